"""The schema and its guards: depth, aliases and size of a document are bounded before anything runs."""

from __future__ import annotations

import strawberry
from django.conf import settings
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)

from cognitive.api.graphql.mutations import Mutation
from cognitive.api.graphql.queries import Query
from cognitive.errors import ApplicationError

# A client sends the same few documents again and again: each is parsed and validated once.
CACHED_DOCUMENTS = 256


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
    """The limits are read from the settings here, once: the validation cache is keyed by the rule classes."""
    limits = [
        *QueryDepthLimiter(max_depth=settings.DSPEX_GRAPHQL_MAX_DEPTH).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.DSPEX_GRAPHQL_MAX_ALIASES).validation_rules,
    ]
    max_tokens = settings.DSPEX_GRAPHQL_MAX_TOKENS
    # Factories: every request gets its own extension objects (they keep per-request state).
    return DSPexSchema(
        query=Query,
        mutation=Mutation,
        extensions=[
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
            lambda: AddValidationRules(limits),
            lambda: MaskErrors(should_mask_error=_is_unexpected, error_message="internal error"),
            lambda: ParserCache(maxsize=CACHED_DOCUMENTS),
            lambda: ValidationCache(maxsize=CACHED_DOCUMENTS),
        ],
    )


schema = build_schema()
