"""Every field error of a request in one answer, including the ones a service check finds.

A serializer field can run a service's own check (`service_check`); its InvalidInput becomes that
field's error next to every other field's, instead of surfacing alone after the others are fixed.
The first error's JSON path (`extra.path` / `extra.field`) is kept, as the service reported it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from rest_framework import serializers

from cognitive.errors import InvalidInput

T = TypeVar("T")


class RequestInvalid(serializers.ValidationError):
    """Field errors (`detail`), plus the `extra` a service check attached to the first of them."""

    def __init__(self, detail: Any, extra: dict[str, Any]) -> None:
        super().__init__(detail)
        self.extra = extra


class ServiceChecks:
    """Serializer mixin: `self.service_check("config", validate_config, ...)` inside a `validate_<field>`."""

    def service_check(self, field: str, check: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return check(*args, **kwargs)
        except InvalidInput as exc:
            self.__dict__.setdefault("_check_extras", {})[field] = exc.extra
            raise serializers.ValidationError(exc.message, code="invalid") from None

    def is_valid(self, *, raise_exception: bool = False) -> bool:
        valid = super().is_valid(raise_exception=False)  # type: ignore[misc]
        if not valid and raise_exception:
            errors = self.errors  # type: ignore[attr-defined]
            first = next(iter(errors), None)
            raise RequestInvalid(errors, dict(self.__dict__.get("_check_extras", {}).get(first, {})))
        return valid
