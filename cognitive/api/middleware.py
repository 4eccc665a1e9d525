"""Every answer under /api/ is JSON in the `{"message", "extra"}` envelope, whoever produced it.

DRF's exception handler covers errors inside API views. What happens outside them does not pass
through it: a body over the upload limit, a path no route matches, an unexpected exception. Django
answers those with HTML pages; this middleware answers them in the envelope instead, and a 500
carries only an error id that is also in the log, never a traceback.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework.response import Response

from cognitive.services.datasets import MAX_IMPORT_BYTES

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"

_MESSAGES = {
    400: "bad request",
    403: "forbidden",
    404: "not found: no API route or resource at this address",
    405: "method not allowed",
    413: "the request body is too large",
}


def envelope(status: int, message: str, **extra: object) -> JsonResponse:
    return JsonResponse({"message": message, "extra": extra}, status=status)


def too_large(limit: int) -> JsonResponse:
    return envelope(
        413, f"the request body is larger than {limit} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)", limit_bytes=limit
    )


def server_error(request: HttpRequest, exc: BaseException | None = None) -> JsonResponse:
    error_id = uuid.uuid4().hex
    logger.error(
        "API request failed: error_id=%s %s %s", error_id, request.method, request.path,
        exc_info=(type(exc), exc, exc.__traceback__) if exc is not None else None,
    )
    return envelope(500, "the request failed on the server; quote the error id when reporting it", error_id=error_id)


def _body_limit(request: HttpRequest) -> int:
    # Uploaded files do not count against Django's limit; the dataset import takes files up to its own.
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if request.content_type == "multipart/form-data":
        limit += MAX_IMPORT_BYTES
    return limit


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


class ApiEnvelopeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        limit = _body_limit(request)
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            return too_large(limit)
        response = self.get_response(request)
        if response.status_code < 400 or _is_json(response) or getattr(response, "streaming", False):
            return response
        if isinstance(response, Response):
            return response  # DRF's own error, rendered as the client asked (the browsable API's HTML)
        if response.status_code >= 500:
            return server_error(request)
        status = response.status_code
        message = _MESSAGES.get(status) or HTTPStatus(status).phrase.lower()
        enveloped = envelope(status, message)
        for header in ("Retry-After", "Allow", "WWW-Authenticate"):
            if header in response:
                enveloped[header] = response[header]
        return enveloped

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(API_PREFIX):
            return None
        if isinstance(exception, RequestDataTooBig):
            return too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        if isinstance(exception, Http404 | PermissionDenied | BadRequest | SuspiciousOperation):
            return None  # Django turns these into 404/403/400 pages; __call__ puts them in the envelope
        return server_error(request, exception)

