from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from cognitive.models import Program
from cognitive.services.common import require_json_object, save_unique
from cognitive.services.pipeline_references import pipeline_with_names
from cognitive.services.pipelines import pipeline_check
from cognitive.services.transitions import apply_transition


def program_create(
    *,
    owner: AbstractBaseUser,
    name: str,
    description: str = "",
    pipeline: dict[str, Any] | None = None,
    variables: dict[str, Any] | None = None,
) -> Program:
    pipeline = require_json_object(pipeline if pipeline is not None else {}, "pipeline")
    program = Program(
        owner=owner,
        name=name,
        description=description,
        pipeline=pipeline_with_names(owner=owner, pipeline=pipeline),
        variables=require_json_object(variables if variables is not None else {}, "variables"),
    )
    pipeline_check(owner=owner, pipeline=program.pipeline)
    return save_unique(program, what="you already have a program")


def program_update(*, program: Program, **fields: Any) -> Program:
    for key in ("pipeline", "variables"):
        if key in fields:
            require_json_object(fields[key], key)
    if "pipeline" in fields:
        fields["pipeline"] = pipeline_with_names(owner=program.owner, pipeline=fields["pipeline"])
        pipeline_check(owner=program.owner, pipeline=fields["pipeline"])
    for key, value in fields.items():
        setattr(program, key, value)
    return save_unique(program, what="you already have a program")


def program_activate(*, program: Program) -> Program:
    return apply_transition(program, "activate", state_field="status")


def program_archive(*, program: Program) -> Program:
    return apply_transition(program, "archive", state_field="status")
