from __future__ import annotations

from typing import TypeVar

from django.db import IntegrityError, models, transaction

from cognitive.errors import Conflict

M = TypeVar("M", bound=models.Model)


def save_unique(obj: M, *, what: str) -> M:
    """Save, turning a name clash (a unique constraint) into a 409 instead of a 500."""
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError:
        name = getattr(obj, "name", "")
        raise Conflict(f"{what} named '{name}' already exists", {"field": "name"}) from None
    return obj
