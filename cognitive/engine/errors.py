"""Which LM failures are worth retrying: the one place that knows DSPy's and LiteLLM's error types.

DSPy 3.4 raises its own `LMError` family (`LMRateLimitError`, `LMServerError`, ...) from both
of its engines; LiteLLM's exceptions can still surface from custom or legacy LM paths, so both
are recognised, also when wrapped (`__cause__`). LiteLLM is only consulted if something has
already imported it: importing it here would cost seconds per worker for nothing.
"""

from __future__ import annotations

import sys
from typing import Any

from dspy.utils import exceptions as dspy_errors

from cognitive.errors import RateLimited, RetryableError

_TRANSIENT_DSPY = (
    dspy_errors.LMServerError,
    dspy_errors.LMTimeoutError,
    dspy_errors.LMTransportError,
    dspy_errors.LMLockTimeoutError,
)
_TRANSIENT_LITELLM = (
    "APIConnectionError",
    "Timeout",
    "InternalServerError",
    "ServiceUnavailableError",
    "BadGatewayError",
)
_TRANSIENT_BUILTIN = (TimeoutError, ConnectionError)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _litellm_types(*names: str) -> tuple[type[BaseException], ...]:
    litellm = sys.modules.get("litellm")
    if litellm is None:
        return ()
    return tuple(t for t in (getattr(litellm, name, None) for name in names) if isinstance(t, type))


def _retry_after(exc: BaseException) -> float | None:
    hint: Any = getattr(exc, "retry_after", None)
    if hint is None:
        headers = getattr(getattr(exc, "response", None), "headers", None) or {}
        hint = headers.get("retry-after") if hasattr(headers, "get") else None
    try:
        seconds = float(hint) if hint is not None else None
    except (TypeError, ValueError):
        return None
    return seconds if seconds is not None and 0 <= seconds < 86_400 else None


def _message(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    # Provider messages append multi-line remedies; the first line says what happened.
    return f"{type(exc).__name__}: {str(text).strip().splitlines()[0]}{notes_of(exc)}"[:500]


def notes_of(exc: BaseException) -> str:
    """What was added on the way up (e.g. TracedLM names the LM and its URL), as a suffix for messages."""
    notes = getattr(exc, "__notes__", None)
    return f" ({'; '.join(str(note) for note in notes)})" if notes else ""


def transient_failure(exc: BaseException) -> RetryableError | None:
    """A RateLimited / RetryableError for an LM failure that may pass by itself, else None."""
    rate_limit_types = (dspy_errors.LMRateLimitError, *_litellm_types("RateLimitError"))
    transient_types = (*_TRANSIENT_DSPY, *_litellm_types(*_TRANSIENT_LITELLM), *_TRANSIENT_BUILTIN)
    for cause in _chain(exc):
        if isinstance(cause, RetryableError):  # already classified, e.g. by retrieval's embedder
            return cause
        if isinstance(cause, rate_limit_types):
            return RateLimited(_message(cause), retry_after=_retry_after(cause))
        if isinstance(cause, transient_types):
            return RetryableError(_message(cause), retry_after=_retry_after(cause))
        if _is_litellm_server_error(cause):
            return RetryableError(_message(cause))
    return None


def _is_litellm_server_error(exc: BaseException) -> bool:
    api_error = _litellm_types("APIError")
    status = getattr(exc, "status_code", None)
    return bool(api_error) and isinstance(exc, api_error) and isinstance(status, int) and status >= 500


def is_parse_failure(exc: BaseException) -> bool:
    return isinstance(exc, dspy_errors.AdapterParseError)
