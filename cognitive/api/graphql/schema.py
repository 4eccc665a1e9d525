"""The schema and its guards: depth, aliases and size of a document are bounded before anything runs."""

from __future__ import annotations

import strawberry
from django.conf import settings
from graphql import GraphQLError
from strawberry.extensions import MaskErrors, MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter

from cognitive.api.graphql.mutations import Mutation
from cognitive.api.graphql.queries import Query
from cognitive.errors import ApplicationError


def _is_unexpected(error: GraphQLError) -> bool:
    """Mask a bug's message (it could hold internals); a domain or a validation error is for the caller."""
    original = error.original_error
    return original is not None and not isinstance(original, ApplicationError | GraphQLError)


class DSPexSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: object = None) -> None:
        # Domain errors are the caller's to fix: strawberry would log them as if they were bugs.
        unexpected = [error for error in errors if _is_unexpected(error)]
        if unexpected:
            super().process_errors(unexpected, execution_context)


def build_schema() -> strawberry.Schema:
    return DSPexSchema(
        query=Query,
        mutation=Mutation,
        # Factories: each request gets fresh extensions, built from the settings of the moment.
        extensions=[
            lambda: QueryDepthLimiter(max_depth=settings.DSPEX_GRAPHQL_MAX_DEPTH),
            lambda: MaxAliasesLimiter(max_alias_count=settings.DSPEX_GRAPHQL_MAX_ALIASES),
            lambda: MaxTokensLimiter(max_token_count=settings.DSPEX_GRAPHQL_MAX_TOKENS),
            lambda: MaskErrors(should_mask_error=_is_unexpected, error_message="internal error"),
        ],
    )


schema = build_schema()
