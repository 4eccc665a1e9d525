"""Runs a django-fsm transition and saves it, turning refusals into 409s that name the current state."""

from __future__ import annotations

from typing import Any

from django.db import models, transaction
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from cognitive.errors import Conflict


def apply_transition(obj: models.Model, name: str, *args: Any, state_field: str, **kwargs: Any) -> models.Model:
    current = getattr(obj, state_field)
    label = obj._meta.verbose_name
    try:
        with transaction.atomic():
            getattr(obj, name)(*args, **kwargs)
            obj.save()
    except TransitionNotAllowed:
        raise Conflict(
            f"cannot {name.replace('_', ' ')} a {label} that is {current}",
            {"state": current, "transition": name},
        ) from None
    except ConcurrentTransition:
        obj.refresh_from_db()
        raise Conflict(
            f"the {label} changed state concurrently; it is now {getattr(obj, state_field)}",
            {"state": getattr(obj, state_field), "transition": name},
        ) from None
    return obj
