"""One exception handler: every error body is `{"message": str, "extra": dict}`."""

from __future__ import annotations

from typing import Any

from django.db.models import ProtectedError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from cognitive.errors import ApplicationError
from cognitive.models import ImmutableRowError


def _first_message(detail: Any) -> str:
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        inner = _first_message(value)
        # A service check's message often starts with its own path (`documents[1] is empty`).
        names_itself = inner.startswith(key) and inner[len(key):][:1] in ("[", ".", " ", ":")
        return inner if key == "non_field_errors" or names_itself else f"{key}: {inner}"
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response({"message": exc.message, "extra": exc.extra}, status=exc.status_code)
    if isinstance(exc, ImmutableRowError):
        return Response({"message": str(exc), "extra": {}}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, ProtectedError):
        blockers = sorted({str(obj) for obj in exc.protected_objects})[:10]
        return Response(
            {"message": "cannot delete: it is still used by other resources", "extra": {"used_by": blockers}},
            status=status.HTTP_409_CONFLICT,
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        # A service check run by a serializer keeps the JSON path it reported (see api/validation.py).
        extra = {**getattr(exc, "extra", {}), "fields": exc.detail}
        response.data = {"message": _first_message(exc.detail), "extra": extra}
    else:
        # DRF has already turned Django's Http404/PermissionDenied into its own exceptions with a detail.
        detail = response.data.get("detail") if isinstance(response.data, dict) else None
        response.data = {"message": str(detail or exc), "extra": {}}
    return response
