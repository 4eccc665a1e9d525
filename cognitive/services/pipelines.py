"""Pipeline specs against the database: which modules and corpora a spec may name, and what they run on."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from cognitive.engine.language_models import lm_for
from cognitive.engine.plan import PipelinePlan, StepPlan
from cognitive.engine.runner import PreparedModule, prepare_module
from cognitive.engine.validation import ModuleSignature, compile_pipeline
from cognitive.errors import InvalidInput
from cognitive.json_limits import check_json
from cognitive.models import LanguageModel, Module
from cognitive.services.lms import lm_default
from cognitive.services.retrieval import corpus_exists
from cognitive.signatures import signature_from_fields


def module_signature(module: Module) -> ModuleSignature:
    signature = module.signature
    parsed = signature_from_fields(signature.input_fields, signature.output_fields, signature.instructions)
    return ModuleSignature(name=module.name, inputs=parsed.inputs, outputs=parsed.outputs)


def module_rows(owner: Any, names: Iterable[str]) -> dict[str, Module]:
    """The owner's modules with these names, by name, with signature and LM loaded. `owner`: a user or an id."""
    names = set(names)
    if not names:
        return {}
    queryset = Module.objects.select_related("signature", "lm").filter(owner=owner, name__in=names)
    return {module.name: module for module in queryset}


def _module_lookup(owner: Any, rows: dict[str, Module]) -> Callable[[str], ModuleSignature | None]:
    """Looks modules up by name, keeping each row it loads in `rows`."""
    missing: set[str] = set()

    def lookup(name: str) -> ModuleSignature | None:
        if name not in rows and name not in missing:
            module = Module.objects.select_related("signature", "lm").filter(owner=owner, name=name).first()
            if module is None:
                missing.add(name)
            else:
                rows[name] = module
        return module_signature(rows[name]) if name in rows else None

    return lookup


def _corpus_lookup(owner: Any) -> Callable[[str], bool]:
    return lambda name: corpus_exists(owner=owner, name=name)


def pipeline_compile(*, owner: Any, pipeline: Any, rows: dict[str, Module] | None = None) -> PipelinePlan:
    """Validate a spec against the owner's modules and corpora (InvalidInput with `extra.path`).

    `owner` is a user or a user id. Pass `rows` (by module name) to compile against rows already
    loaded; the ones the spec names that are missing from it are loaded and added.
    """
    check_json(pipeline)  # a spec from the admin or Python has not been through the API's parser
    lookup = _module_lookup(owner, {} if rows is None else rows)
    return compile_pipeline(pipeline, modules=lookup, corpus_exists=_corpus_lookup(owner))


def pipeline_check(*, owner: AbstractBaseUser, pipeline: Any) -> None:
    """Compose-time check for program create/update. `{}` is a draft with no steps yet."""
    if pipeline == {}:
        return
    pipeline_compile(owner=owner, pipeline=pipeline)


def language_model_of(module: Module, default: LanguageModel | None = None) -> LanguageModel:
    """The module's own LM, else `default` (already looked up by the caller), else the default LM."""
    if module.lm_id:
        return module.lm
    return default if default is not None else lm_default()


def pipeline_modules(
    *, plan: PipelinePlan, owner: AbstractBaseUser, state: Mapping[str, Any] | None
) -> tuple[dict[str, PreparedModule], dict[str, Module]]:
    """DSPy modules for every module step (by step id), with the version's state per step, and the rows."""
    rows = module_rows(owner, plan.module_names())
    prepared: dict[str, PreparedModule] = {}
    for step in plan.steps():
        if step.kind != "module":
            continue
        prepared[step.id] = prepare_step_module(step, rows, (state or {}).get(step.id))
    return prepared, rows


def prepare_step_module(
    step: StepPlan, rows: Mapping[str, Module], state: Any, default_lm: LanguageModel | None = None
) -> PreparedModule:
    module = rows.get(step.module or "")
    if module is None:
        raise InvalidInput(f"{step.path}.module: unknown module '{step.module}'", {"path": f"{step.path}.module"})
    if state is not None and not isinstance(state, Mapping):
        raise InvalidInput(f"the saved state of step '{step.id}' is not a JSON object", {"path": f"state.{step.id}"})
    try:
        return prepare_module_row(module, state=state, lm=language_model_of(module, default_lm))
    except InvalidInput as exc:
        raise InvalidInput(f"step '{step.id}': {exc.message}", {**exc.extra, "path": f"state.{step.id}"}) from None


def prepare_module_row(
    module: Module, *, state: Mapping[str, Any] | None = None, config: Mapping[str, Any] | None = None,
    lm: LanguageModel | None = None,
) -> PreparedModule:
    signature = module.signature
    return prepare_module(
        module_type=module.type,
        input_fields=signature.input_fields,
        output_fields=signature.output_fields,
        instructions=signature.instructions,
        config=dict(config if config is not None else module.config),
        lm=lm_for(lm or language_model_of(module)),
        state=state,
    )
