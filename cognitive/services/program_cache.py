"""Compiled plans and prepared DSPy modules, reused by every run while the rows they came from are unchanged.

Compiling a pipeline and building its DSPy modules costs more CPU than a fast LM call, and
each run of a program would otherwise repeat it. The caches are keyed on what the result was
built from: the program row, each named module's row with its signature and LM, the version
and the default LM. An edit to any of them changes the key, so it takes effect on the next run.
One query per run re-reads the module rows to build that key.

Corpora are not part of the key: a corpus deleted after the pipeline compiled makes the
`retrieve` step fail when it runs ("unknown corpus"), rather than the run being refused.

Only runs use the prepared modules. Optimizers change the modules they are given, so they
prepare their own (`pipeline_modules`).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from cognitive.engine.language_models import lm_identity
from cognitive.engine.plan import PipelinePlan
from cognitive.engine.runner import PreparedModule
from cognitive.lru import LRUCache
from cognitive.models import Module, Program, ProgramVersion
from cognitive.services.lms import lm_default
from cognitive.services.pipelines import module_rows, pipeline_compile, prepare_step_module

# (program id, program updated_at) → the module names its pipeline refers to.
_module_names: LRUCache[frozenset[str]] = LRUCache(512, name="module_names")
_plans: LRUCache[PipelinePlan] = LRUCache(512, name="plans")
_prepared: LRUCache[Mapping[str, PreparedModule]] = LRUCache(128, name="prepared_modules")


@dataclass(frozen=True)
class CompiledPlan:
    plan: PipelinePlan
    rows: Mapping[str, Module]  # by module name, with signature and lm loaded
    key: Hashable


def _row_key(module: Module) -> tuple[Any, ...]:
    lm = module.lm if module.lm_id else None
    return (module.name, module.pk, module.updated_at, module.signature.updated_at, module.lm_id,
            lm.updated_at if lm is not None else None)


def compiled_plan(program: Program) -> CompiledPlan:
    """The program's pipeline compiled against its owner's current modules (InvalidInput with a path)."""
    names = _module_names.get((program.pk, program.updated_at))
    rows = module_rows(program.owner_id, names) if names is not None else {}
    key = (program.pk, program.updated_at, tuple(sorted(_row_key(m) for m in rows.values())))
    plan = _plans.get(key) if names is not None else None
    if plan is not None:
        return CompiledPlan(plan, rows, key)

    # The plan is compiled from the very rows its key is made of.
    plan = pipeline_compile(owner=program.owner_id, pipeline=program.pipeline, rows=rows)
    names = frozenset(plan.module_names())
    rows = {name: rows[name] for name in names if name in rows}
    key = (program.pk, program.updated_at, tuple(sorted(_row_key(m) for m in rows.values())))
    _module_names.put((program.pk, program.updated_at), names)
    _plans.put(key, plan)
    return CompiledPlan(plan, rows, key)


def prepared_modules(compiled: CompiledPlan, *, version_id: Any) -> Mapping[str, PreparedModule]:
    """DSPy modules for every module step (by step id), loaded with the version's state. Shared: never mutate."""
    default = lm_default() if any(not m.lm_id for m in compiled.rows.values()) else None
    key = (compiled.key, version_id, lm_identity(default) if default is not None else None)
    prepared = _prepared.get(key)
    if prepared is not None:
        return prepared
    state = _version_state(version_id)
    prepared = {
        step.id: prepare_step_module(step, compiled.rows, state.get(step.id), default)
        for step in compiled.plan.steps()
        if step.kind == "module"
    }
    _prepared.put(key, prepared)
    return prepared


def _version_state(version_id: Any) -> Mapping[str, Any]:
    if version_id is None:
        return {}
    state = ProgramVersion.objects.filter(pk=version_id).values_list("state", flat=True).first()
    return state if isinstance(state, Mapping) else {}

