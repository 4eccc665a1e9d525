"""Program versions: snapshot the modules' DSPy JSON state, render a version's prompts, promote and roll back."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from cognitive.engine.runner import dump_json_state, render_prompt
from cognitive.errors import Conflict, InvalidInput
from cognitive.models import (
    ActiveVersionChange,
    Module,
    OptimizationRun,
    Program,
    ProgramStatus,
    ProgramVersion,
    VersionChangeKind,
    VersionSource,
)
from cognitive.services.pipelines import pipeline_compile, pipeline_modules


def _plan(program: Program) -> Any:
    if not program.pipeline:
        raise Conflict("the program has no pipeline steps yet", {"state": program.status})
    return pipeline_compile(owner=program.owner, pipeline=program.pipeline)


def program_version_snapshot(*, program: Program) -> ProgramVersion:
    """A new version (the next number) holding each module step's current state.

    "Current" is the active version's state where it has one for the step (e.g. optimized
    demos), else the module as declared. The version is recorded, not promoted.
    """
    plan = _plan(program)
    base = program.active_version.state if program.active_version is not None else {}
    prepared, _ = pipeline_modules(plan=plan, owner=program.owner, state=base)
    state = {step_id: dump_json_state(module.module) for step_id, module in prepared.items()}
    with transaction.atomic():
        # Locking the program serialises concurrent snapshots, so numbers never collide.
        Program.objects.select_for_update().filter(pk=program.pk).first()
        latest = ProgramVersion.objects.filter(program=program).aggregate(latest=Max("number"))["latest"] or 0
        return ProgramVersion.objects.create(
            program=program, number=latest + 1, state=state, source=VersionSource.MANUAL
        )


def program_version_prompt(*, version: ProgramVersion) -> dict[str, Any]:
    """Each predictor's prompt (instructions, fields, demos) as chat messages and as plain text."""
    program = version.program
    plan = _plan(program)
    rows = {
        m.name: m
        for m in Module.objects.select_related("signature").filter(owner=program.owner, name__in=plan.module_names())
    }
    steps = []
    for step in plan.steps():
        module = rows.get(step.module or "")
        if module is None:
            continue
        signature = module.signature
        predictors = render_prompt(
            input_fields=signature.input_fields,
            output_fields=signature.output_fields,
            instructions=signature.instructions,
            module_type=module.type,
            config=module.config,
            state=(version.state or {}).get(step.id),
        )
        for predictor in predictors:
            predictor["text"] = messages_as_text(predictor["messages"])
        steps.append({"step": step.id, "module": module.name, "type": module.type, "predictors": predictors})
    return {"version": str(version.pk), "program": str(program.pk), "number": version.number, "steps": steps}


def messages_as_text(messages: list[dict[str, Any]]) -> str:
    return "\n\n".join(f"--- {message.get('role', '')} ---\n{message.get('content', '')}" for message in messages)


def switch_active_version(
    program: Program, version: ProgramVersion | None, *, kind: str, run: OptimizationRun | None = None,
    actor: AbstractBaseUser | None = None, reason: str = "",
) -> None:
    """Make `version` the one runs use and record the change (call with the program locked)."""
    ActiveVersionChange.objects.create(
        program=program, kind=kind, from_version=program.active_version, to_version=version, run=run, actor=actor,
        reason=reason[:300],
    )
    Program.objects.filter(pk=program.pk).update(active_version=version, updated_at=timezone.now())
    program.active_version = version


def program_promote(
    *, program: Program, version: ProgramVersion, actor: AbstractBaseUser | None = None
) -> Program:
    """Make `version` the one runs use. Rollback returns to the version active before it."""
    if version.program_id != program.pk:
        raise InvalidInput("the version belongs to another program", {"field": "version"})
    with transaction.atomic():
        locked = Program.objects.select_for_update().get(pk=program.pk)
        if locked.status not in (ProgramStatus.ACTIVE, ProgramStatus.OPTIMIZING):
            raise Conflict(f"cannot promote a version of a program that is {locked.status}", {"state": locked.status})
        if locked.active_version_id != version.pk:
            switch_active_version(
                locked, version, kind=VersionChangeKind.PROMOTE, actor=actor, reason="promoted by hand"
            )
    program.refresh_from_db()
    return program


def previous_active_version(program: Program) -> tuple[bool, ProgramVersion | None]:
    """(found, version): the version active before the current one, replaying promotions and rollbacks."""
    stack: list[Any] = []
    for change in ActiveVersionChange.objects.filter(program=program).order_by("created_at", "id"):
        if change.kind == VersionChangeKind.PROMOTE:
            stack.append(change.from_version_id)
        elif stack:
            stack.pop()
    if not stack:
        return False, None
    target = stack[-1]
    return True, ProgramVersion.objects.filter(pk=target).first() if target else None


def program_rollback(*, program: Program, actor: AbstractBaseUser | None = None) -> Program:
    with transaction.atomic():
        locked = Program.objects.select_for_update().get(pk=program.pk)
        if locked.status not in (ProgramStatus.ACTIVE, ProgramStatus.OPTIMIZING):
            raise Conflict(f"cannot roll back a program that is {locked.status}", {"state": locked.status})
        found, target = previous_active_version(locked)
        if not found:
            raise Conflict("there is no earlier active version to roll back to", {"state": locked.status})
        label = f"v{target.number}" if target else "the modules as declared"
        switch_active_version(
            locked, target, kind=VersionChangeKind.ROLLBACK, actor=actor, reason=f"rolled back to {label}"
        )
    program.refresh_from_db()
    return program
