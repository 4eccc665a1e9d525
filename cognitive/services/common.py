from __future__ import annotations

from typing import Any, TypeVar

from django.db import IntegrityError, models, transaction
from django_fsm import ConcurrentTransition, FSMFieldMixin

from cognitive.errors import Conflict, InvalidInput

M = TypeVar("M", bound=models.Model)


def save_unique(obj: M, *, what: str) -> M:
    """Save, turning a name clash (a unique constraint) or a concurrent state change into a 409, not a 500."""
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError:
        name = getattr(obj, "name", "")
        raise Conflict(f"{what} named '{name}' already exists", {"field": "name"}) from None
    except ConcurrentTransition:
        # The row changed state since it was loaded; saving this stale copy would undo that change.
        obj.refresh_from_db()
        state = next((getattr(obj, f.name) for f in obj._meta.fields if isinstance(f, FSMFieldMixin)), "")
        raise Conflict(
            f"the {obj._meta.verbose_name} changed state while being edited (it is now {state}); reload and retry",
            {"state": state},
        ) from None
    return obj


def require_json_object(value: Any, path: str) -> dict[str, Any]:
    """A 400 naming the path unless the value is a JSON object."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{path} must be a JSON object", {"path": path})
    return value
