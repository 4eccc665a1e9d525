"""References in request bodies: every one takes the row's id or its name, among the rows the caller may use.

A reference to something the caller may not use fails exactly like one to nothing at all, so an
error never tells a user that another user's signature (or program, or dataset) exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Model, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cognitive.errors import InvalidInput

_SHOWN = 200  # characters of a bad reference repeated in its error


class ReferenceNotFound(InvalidInput):
    pass


def resolve_reference(queryset: QuerySet, value: Any, *, kind: str, user: AbstractBaseUser | None = None) -> Model:
    """The row of `queryset` whose id or name is `value`.

    An id wins over a name (a name may look like an id). `queryset` is what the caller may use; for
    staff that can hold several rows with one name (names are unique per owner), and then the
    caller's own row is the one meant, else the name is ambiguous and only an id will do.
    """
    if isinstance(value, uuid.UUID):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"expected the id or name of a {kind}, got {_describe(value)}")
    value = value.strip()
    try:
        as_id = uuid.UUID(value)
    except ValueError:
        as_id = None
    if as_id is not None:
        found = queryset.filter(pk=as_id).first()
        if found is not None:
            return found
    named = list(queryset.filter(name=value)[:10])
    if len(named) > 1 and user is not None:
        named = [row for row in named if getattr(row, "owner_id", None) == user.pk] or named
    if len(named) == 1:
        return named[0]
    if named:
        raise InvalidInput(f"several {kind}s are named '{value[:_SHOWN]}'; refer to the one you mean by its id")
    raise ReferenceNotFound(f"no {kind} with the id or name '{value[:_SHOWN]}'")


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    return type(value).__name__ if not isinstance(value, str) else "an empty string"


@extend_schema_field(OpenApiTypes.STR)
class IdOrNameRelatedField(serializers.RelatedField):
    """A reference by id or by name. `selector(user=...)` gives the rows the caller may use (or `queryset`).

    `output` decides what responses show: the row's `id` or its `name`.
    """

    def __init__(
        self,
        *,
        kind: str,
        selector: Callable[..., QuerySet] | None = None,
        output: str = "id",
        **kwargs: Any,
    ) -> None:
        self.kind = kind
        self.selector = selector
        self.output = output
        kwargs.setdefault("help_text", f"the id or the name of {'an' if kind[0] in 'aeiouAEIOU' else 'a'} {kind}")
        super().__init__(**kwargs)

    def _user(self) -> AbstractBaseUser | None:
        request = self.context.get("request")
        return getattr(request, "user", None)

    def get_queryset(self) -> QuerySet:
        if self.selector is not None:
            return self.selector(user=self._user())
        return super().get_queryset()

    def to_internal_value(self, data: Any) -> Any:
        try:
            return resolve_reference(self.get_queryset(), data, kind=self.kind, user=self._user())
        except InvalidInput as exc:
            raise serializers.ValidationError(exc.message, code="reference") from None

    def to_representation(self, value: Any) -> Any:
        return str(value.pk) if self.output == "id" else getattr(value, self.output)
