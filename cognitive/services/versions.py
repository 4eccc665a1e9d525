"""Program versions: snapshot the modules' DSPy JSON state, and render a version's prompts."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max

from cognitive.engine.runner import dump_json_state, render_prompt
from cognitive.errors import Conflict
from cognitive.models import Module, Program, ProgramVersion, VersionSource
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
