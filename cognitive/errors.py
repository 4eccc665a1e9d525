"""Typed domain errors. One DRF exception handler turns them into `{"message", "extra"}`."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A failure the caller can act on; never a bug."""

    status_code = 400

    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class InvalidInput(ApplicationError):
    """The request names something malformed (a spec, a config, an input)."""


class PermissionDenied(ApplicationError):
    status_code = 403


class NotFound(ApplicationError):
    status_code = 404


class Conflict(ApplicationError):
    """The resource is in a state that forbids the action (an illegal transition, a duplicate)."""

    status_code = 409


class TooManyRequests(ApplicationError):
    """The caller's rate for this action is used up; `extra["retry_after"]` says when to try again (seconds)."""

    status_code = 429


class ExecutionFailed(ApplicationError):
    """A run failed for a reason retrying cannot fix (bad output after DSPy's own retries, a failed step)."""

    status_code = 422


class RetryableError(Exception):
    """A transient failure (LM 5xx, timeout, lost connection): the job goes back to pending with backoff."""

    def __init__(self, message: str, *, retry_after: float | None = None, kind: str = "transient") -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.kind = kind


class RateLimited(RetryableError):
    """The LM (or our own per-LM limit) said slow down: snooze the job without using an attempt."""

    def __init__(self, message: str, *, retry_after: float | None = None, lm: str = "") -> None:
        super().__init__(message, retry_after=retry_after, kind="rate_limited")
        self.lm = lm  # the LanguageModel whose limit it was, when known


class BudgetExceeded(ApplicationError):
    """A spend limit (USD) of the user or the program is used up until it resets."""

    status_code = 429
