from __future__ import annotations

import sys
import types

import pytest
from dspy.utils.exceptions import (
    AdapterParseError,
    LMAuthError,
    LMRateLimitError,
    LMServerError,
    LMTimeoutError,
    LMTransportError,
)

from cognitive.engine.errors import is_parse_failure, transient_failure
from cognitive.errors import RateLimited, RetryableError


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (LMRateLimitError("slow down\n  To fix: wait", model="m", retry_after=2.5), RateLimited),
        (LMServerError("boom", model="m", status=500), RetryableError),
        (LMTimeoutError("late", model="m"), RetryableError),
        (LMTransportError("refused", model="m"), RetryableError),
        (ConnectionResetError("reset"), RetryableError),
        (LMAuthError("bad key", model="m", status=401), None),
        (ValueError("bug"), None),
    ],
)
def test_dspy_lm_errors(exc, kind):
    found = transient_failure(exc)
    if kind is None:
        assert found is None
    else:
        assert type(found) is kind
        assert found.message.startswith(type(exc).__name__ + ": ")
        assert "\n" not in found.message


def test_retry_after_and_wrapped_causes():
    try:
        try:
            raise LMRateLimitError("slow", model="m", retry_after=7)
        except LMRateLimitError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        found = transient_failure(outer)
    assert isinstance(found, RateLimited) and found.retry_after == 7


def test_litellm_errors_are_recognised_when_litellm_is_loaded(monkeypatch):
    fake = types.ModuleType("litellm")

    class RateLimitError(Exception):
        def __init__(self, message: str) -> None:
            super().__init__(message)
            self.response = types.SimpleNamespace(headers={"retry-after": "3"})

    class APIError(Exception):
        def __init__(self, message: str, status_code: int) -> None:
            super().__init__(message)
            self.status_code = status_code

    class InternalServerError(APIError):
        pass

    class BadRequestError(APIError):
        pass

    for cls in (RateLimitError, APIError, InternalServerError, BadRequestError):
        setattr(fake, cls.__name__, cls)
    monkeypatch.setitem(sys.modules, "litellm", fake)

    limited = transient_failure(RateLimitError("429"))
    assert isinstance(limited, RateLimited) and limited.retry_after == 3
    assert isinstance(transient_failure(InternalServerError("500", 500)), RetryableError)
    assert isinstance(transient_failure(APIError("503", 503)), RetryableError)
    assert transient_failure(BadRequestError("400", 400)) is None


def test_parse_failures():
    import dspy

    assert is_parse_failure(AdapterParseError("ChatAdapter", dspy.Signature("q -> a"), "prose"))
    assert not is_parse_failure(ValueError())
