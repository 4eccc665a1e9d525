"""Errors in mutation payloads: `errors { field message }`, as in the original design's example.

A domain error (`ApplicationError`) becomes one entry that also carries what REST would answer:
`code` is REST's HTTP status for the same failure, `path` a JSON path into the request (a
pipeline, a batch item), `position` an offset into a signature spec.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, TypeVar

import strawberry
from strawberry.scalars import JSON

from cognitive.api.throttles import ActionThrottle
from cognitive.errors import ApplicationError, NotFound, TooManyRequests

Value = TypeVar("Value")


@strawberry.type
class FieldError:
    field: str | None = strawberry.field(description="the argument at fault, when there is one")
    message: str
    code: int = strawberry.field(description="the HTTP status REST answers for the same failure")
    path: str | None = strawberry.field(default=None, description="a JSON path into the argument")
    position: int | None = strawberry.field(default=None, description="0-based offset into a signature spec")
    extra: JSON = strawberry.field(default_factory=dict, description="REST's `extra` for the same failure")


def field_error(exc: ApplicationError, default_field: str | None = None) -> FieldError:
    extra = dict(exc.extra)
    path = extra.get("path")
    field = extra.get("field") or (str(path).split(".")[0].split("[")[0] if path else None) or default_field
    position = extra.get("position")
    return FieldError(
        field=field, message=exc.message, code=exc.status_code, path=str(path) if path else None,
        position=position if isinstance(position, int) else None, extra=extra,
    )


def guarded(action: Callable[[], Value], *, field: str | None = None) -> tuple[Value | None, list[FieldError]]:
    """Run a mutation's action; a domain error comes back as its payload's `errors`, never as a failure."""
    try:
        return action(), []
    except ApplicationError as exc:
        return None, [field_error(exc, field)]


def found(row: Any, what: str, field: str) -> Any:
    """The row, or the 404 REST answers when the caller may not see it (or it does not exist)."""
    if row is None:
        raise NotFound(f"{what} not found", {"field": field})
    return row


def throttle(request: Any, scope: str) -> None:
    """The REST action's throttle (same scope, same per-user bucket), so GraphQL is no way around it."""
    limiter = ActionThrottle()
    if not limiter.allow_request(request, SimpleNamespace(throttle_scope=scope)):
        wait = limiter.wait()
        retry = int(wait) + 1 if wait is not None else None
        raise TooManyRequests(
            f"too many {scope} requests; retry in {retry} s" if retry else f"too many {scope} requests",
            {"retry_after": retry},
        )
