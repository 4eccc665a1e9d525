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
