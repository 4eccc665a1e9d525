from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from cognitive.engine.modules import build_module, validate_module_config
from cognitive.errors import InvalidInput
from cognitive.models import LanguageModel, Module, ModuleState, Signature
from cognitive.services.common import save_unique
from cognitive.services.lm_access import lm_output_limit, lm_require_available
from cognitive.services.transitions import apply_transition


def module_create(
    *,
    owner: AbstractBaseUser,
    name: str,
    type: str,
    signature: Signature,
    lm: LanguageModel | None = None,
    config: dict[str, Any] | None = None,
    cache_ttl: int = 0,
) -> Module:
    lm_require_available(lm, user=owner)
    config = validate_module_config(type, config if config is not None else {}, lm_max_tokens=lm_output_limit(lm))
    module = Module(owner=owner, name=name, type=type, signature=signature, lm=lm, config=config, cache_ttl=cache_ttl)
    return save_unique(module, what="you already have a module")


_DEFINITION_FIELDS = {"type", "signature", "lm", "config"}


def module_update(*, module: Module, **fields: Any) -> Module:
    """Changing what the module is (type, signature, LM, config) sends it back to `uninitialized`."""
    unknown = set(fields) - _DEFINITION_FIELDS - {"name", "cache_ttl"}
    if unknown:
        raise InvalidInput(f"cannot update {', '.join(sorted(unknown))}")
    new_type = fields.get("type", module.type)
    new_config = fields.get("config", module.config)
    new_lm = fields.get("lm", module.lm)
    if "lm" in fields:
        lm_require_available(new_lm, user=module.owner)
    validate_module_config(new_type, new_config, lm_max_tokens=lm_output_limit(new_lm))
    redefines = any(key in fields and fields[key] != getattr(module, key) for key in _DEFINITION_FIELDS)
    with transaction.atomic():
        for key, value in fields.items():
            setattr(module, key, value)
        save_unique(module, what="you already have a module")
        if redefines and module.state in (ModuleState.READY, ModuleState.ERROR):
            apply_transition(module, "reset", state_field="state")
    return module


def module_initialize(*, module: Module) -> Module:
    """Validate the config and build the DSPy module (no LM call): `ready`, or `error` with the reason."""
    apply_transition(module, "initialize", state_field="state")
    try:
        build_module(
            module.type,
            module.signature.input_fields,
            module.signature.output_fields,
            module.signature.instructions,
            module.config,
        )
    except InvalidInput as exc:
        apply_transition(module, "fail", exc.message, state_field="state")
        return module
    apply_transition(module, "mark_ready", state_field="state")
    return module


def module_reset(*, module: Module) -> Module:
    return apply_transition(module, "reset", state_field="state")


def modules_reset_for_signature(*, signature: Signature) -> int:
    """A redefined signature redefines every module built on it: back to `uninitialized` to rebuild."""
    built = Module.objects.filter(signature=signature, state__in=[ModuleState.READY, ModuleState.ERROR])
    for module in built:
        module_reset(module=module)
    return len(built)


def module_fail(*, module: Module, reason: str) -> Module:
    return apply_transition(module, "fail", reason, state_field="state")
