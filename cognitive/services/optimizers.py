from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from cognitive.engine.optimizers import validate_optimizer_config
from cognitive.models import Optimizer
from cognitive.services.common import save_unique


def optimizer_create(
    *, owner: AbstractBaseUser, name: str, type: str, config: dict[str, Any] | None = None
) -> Optimizer:
    config = validate_optimizer_config(type, config if config is not None else {})
    optimizer = Optimizer(owner=owner, name=name, type=type, config=config)
    return save_unique(optimizer, what="you already have an optimizer")


def optimizer_update(*, optimizer: Optimizer, **fields: Any) -> Optimizer:
    validate_optimizer_config(fields.get("type", optimizer.type), fields.get("config", optimizer.config))
    for key, value in fields.items():
        setattr(optimizer, key, value)
    return save_unique(optimizer, what="you already have an optimizer")
