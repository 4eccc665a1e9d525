"""The Idempotency-Key header on the API's run requests: a replay answers what the first request answered."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cognitive.services.idempotency import (
    HEADER,
    MAX_KEY_LENGTH,
    idempotency_key_parse,
    idempotent_begin,
    idempotent_finish,
    idempotent_release,
    request_fingerprint,
)

REPLAYED_HEADER = "Idempotent-Replayed"

KEY_PARAMETER = OpenApiParameter(
    HEADER,
    str,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        f"any unique string (at most {MAX_KEY_LENGTH} characters, quoted or not). Sending the same request "
        f"again with the same key answers the first response (status and body) with `{REPLAYED_HEADER}: true`; "
        "the same key with a different body is a 422, and while the first is still being handled a 409."
    ),
)
KEY_RESPONSES = {
    409: OpenApiResponse(description=f"the first request with this {HEADER} is still being handled"),
    422: OpenApiResponse(description=f"this {HEADER} was used for a different request (or the run failed)"),
}


def _json_body(data: Any) -> Any:
    """The body exactly as it is sent, as JSON values (ids and dates as strings)."""
    return json.loads(JSONRenderer().render(data)) if data is not None else None


def _began_work(response: Response) -> bool:
    """A run or a batch was created: 2xx, or an error about a run that exists (a failed sync run)."""
    if 200 <= response.status_code < 300:
        return True
    extra = response.data.get("extra") if isinstance(response.data, dict) else None
    return isinstance(extra, dict) and "execution" in extra


def idempotent(view: APIView, request: Request, handle: Callable[[str], Response]) -> Response:
    """Answer with `handle(key)` ("" without the header), or with the stored answer to the key's first request."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return handle("")
    key = idempotency_key_parse(raw)
    body = request.data.dict() if hasattr(request.data, "dict") else request.data
    fingerprint = request_fingerprint(method=request.method or "", path=request.path, body=body)
    replay = idempotent_begin(owner=request.user, key=key, fingerprint=fingerprint)
    if replay is not None:
        return Response(replay.body, status=replay.status_code, headers={REPLAYED_HEADER: "true"})
    try:
        try:
            response = handle(key)
        except Exception as exc:
            # Answered here rather than by DRF after we return, so a failed run's 4xx can be replayed too.
            response = view.handle_exception(exc)
    except BaseException:
        idempotent_release(owner=request.user, key=key)
        raise
    if _began_work(response):
        idempotent_finish(owner=request.user, key=key, status_code=response.status_code, body=_json_body(response.data))
    else:
        idempotent_release(owner=request.user, key=key)
    return response
