"""A validated pipeline: what `validation.compile_pipeline` produces and `pipeline.run_pipeline` runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cognitive.signatures import Field, TypeExpr


@dataclass(frozen=True)
class Ref:
    """`$input.<field>`, `$<step>.<field>`, or `$<step>` (the whole output, only in `return`)."""

    source: str
    field: str | None
    text: str


@dataclass(frozen=True)
class Const:
    value: Any


@dataclass(frozen=True)
class ListOf:
    items: tuple[Binding, ...]


@dataclass(frozen=True)
class ObjectOf:
    items: tuple[tuple[str, Binding], ...]


Binding = Ref | Const | ListOf | ObjectOf

INPUT = "input"


@dataclass(frozen=True)
class StepPlan:
    id: str
    path: str
    kind: str  # "module" | "retrieve" | "merge"
    inputs: tuple[Field, ...]
    outputs: tuple[Field, ...]
    bindings: Mapping[str, Binding]
    module: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 0
    fallback: Mapping[str, Any] | None = None
    compensate: StepPlan | None = None


@dataclass(frozen=True)
class Stage:
    """One top-level entry of `steps`: a single step, or a parallel group of steps."""

    id: str
    path: str
    steps: tuple[StepPlan, ...]
    parallel: bool


@dataclass(frozen=True)
class InputUse:
    """A place that reads `$input.<name>` and the type it needs there."""

    type: TypeExpr | None  # None: any value (e.g. in `return`)
    path: str


@dataclass(frozen=True)
class PipelinePlan:
    stages: tuple[Stage, ...]
    returns: Binding
    input_uses: Mapping[str, tuple[InputUse, ...]]

    def steps(self) -> list[StepPlan]:
        """Every step that may run, compensations included, in pipeline order."""
        found: list[StepPlan] = []
        for stage in self.stages:
            for step in stage.steps:
                found.append(step)
                if step.compensate is not None:
                    found.append(step.compensate)
        return found

    def module_names(self) -> set[str]:
        return {step.module for step in self.steps() if step.module}
