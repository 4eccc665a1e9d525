"""/graphql/: REST's authentication in front of strawberry, and GraphQL's error format for every answer.

A caller signs in as for REST: `Authorization: Token <key>`, or a session (then CSRF applies to
POSTs, as DRF's SessionAuthentication enforces it). Anything refused before the document runs
(no credentials, a body too large, bad JSON) still answers `{"errors": [{"message", "extensions"}]}`.
"""

from __future__ import annotations

from typing import Any

from cross_web import HTTPException
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from graphql import GraphQLError
from rest_framework import exceptions as drf_exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings
from strawberry.django.views import GraphQLView
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from cognitive.api.graphql.context import Context
from cognitive.errors import ApplicationError


def error_response(message: str, status: int, **extensions: Any) -> JsonResponse:
    body = {"data": None, "errors": [{"message": message, "extensions": {"code": status, **extensions}}]}
    return JsonResponse(body, status=status)


def _authenticate(request: HttpRequest) -> Any:
    """REST's authenticators, in REST's order; raises DRF's errors (bad token, CSRF) as REST would.

    The CSRF check may read the body through DRF's parsers, so the body is read (and kept) first:
    strawberry reads it again afterwards.
    """
    request.body  # noqa: B018 (reads and caches the body, within DATA_UPLOAD_MAX_MEMORY_SIZE)
    drf_request = Request(
        request,
        parsers=[parser() for parser in api_settings.DEFAULT_PARSER_CLASSES],
        authenticators=[auth() for auth in api_settings.DEFAULT_AUTHENTICATION_CLASSES],
    )
    return drf_request.user


def _formatted(error: GraphQLError) -> dict[str, Any]:
    body = error.formatted
    original = error.original_error
    if isinstance(original, ApplicationError):
        body["extensions"] = {**(body.get("extensions") or {}), "code": original.status_code, "extra": original.extra}
    return body


@method_decorator(csrf_exempt, name="dispatch")  # CSRF is enforced by SessionAuthentication, as for REST
class DSPexGraphQLView(GraphQLView):
    graphql_ide = "graphiql"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            user = _authenticate(request)
        except RequestDataTooBig:
            return error_response("the request body is too large", 413)
        except drf_exceptions.APIException as exc:
            return error_response(str(exc.detail), exc.status_code)
        if not (user and user.is_authenticated):
            response = error_response(
                "authentication required: send `Authorization: Token <key>` or sign in at /admin/login/", 401
            )
            response["WWW-Authenticate"] = "Token"
            return response
        request.user = user
        try:
            return self.run(request=request)
        except HTTPException as exc:
            return error_response(exc.reason, exc.status_code)

    def get_context(self, request: HttpRequest, response: HttpResponse) -> Context:
        return Context(request=request, response=response)

    def process_result(self, request: HttpRequest, result: ExecutionResult) -> GraphQLHTTPResponse:
        data: GraphQLHTTPResponse = {"data": result.data}
        if result.errors:
            data["errors"] = [_formatted(error) for error in result.errors]
        if result.extensions:
            data["extensions"] = result.extensions
        return data

    def render_graphql_ide(self, request: HttpRequest) -> HttpResponse:
        # The assets are this site's static files (see cognitive/static/graphiql/README.md), never a CDN.
        context = {"csrf_token_value": get_token(request)}
        return HttpResponse(render_to_string("cognitive/graphiql.html", context, request=request))
