"""The demo's second act: a short optimization, watched with a progress bar, baseline vs optimized."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from cognitive.models import Dataset, LanguageModel, Module, OptimizationRun, Program, ProgramStatus, Signature
from cognitive.models.optimization_run import ACTIVE_RUN_STATUSES
from cognitive.services.datasets import dataset_create, dataset_import
from cognitive.services.modules import module_create
from cognitive.services.optimization_jobs import optimization_execute
from cognitive.services.optimization_requests import optimization_start
from cognitive.services.programs import program_activate, program_create
from cognitive.services.signatures import signature_create

PROGRAM = "arithmetic-demo"
BAR_WIDTH = 30


def arithmetic_examples() -> list[dict[str, Any]]:
    """Questions with their true answers: 12 to learn from, 8 to score on."""
    pairs = [(a, b) for a in range(3, 23, 3) for b in (4, 9, 17)][:20]
    return [
        {"inputs": {"question": f"What is {a} + {b}?"}, "outputs": {"answer": str(a + b)},
         "split": "train" if index < 12 else "val"}
        for index, (a, b) in enumerate(pairs)
    ]


def setup_program(owner: AbstractBaseUser, lm: LanguageModel) -> tuple[Program, Dataset]:
    signature = Signature.objects.filter(owner=owner, name="arithmetic").first() or signature_create(
        owner=owner, name="arithmetic", spec="question: str -> answer: str", instructions="Answer with a number."
    )
    if not Module.objects.filter(owner=owner, name="arithmetic_qa").exists():
        module_create(owner=owner, name="arithmetic_qa", type="predict", signature=signature, lm=lm)
    program = Program.objects.filter(owner=owner, name=PROGRAM).first() or program_create(
        owner=owner, name=PROGRAM, description="Few-shot demos learned by an optimizer.",
        pipeline={"steps": [{"id": "qa", "module": "arithmetic_qa"}]},
    )
    if program.status == ProgramStatus.DRAFT:
        program = program_activate(program=program)
    dataset = Dataset.objects.filter(owner=owner, name=f"{PROGRAM} examples").first()
    if dataset is None:
        dataset = dataset_create(owner=owner, name=f"{PROGRAM} examples", program=program)
        dataset_import(dataset=dataset, content=arithmetic_examples(), format="json")
    return program, dataset


# The phases a run reports, in order (see cognitive/services/optimization_jobs.py).
PHASES = ("queued", "starting", "baseline", "compiling", "compiled", "final", "done")


def progress_line(run: OptimizationRun) -> str:
    progress = run.progress or {}
    phase = progress.get("phase", run.status)
    step = PHASES.index(phase) + 1 if phase in PHASES else 0
    filled = round(BAR_WIDTH * step / len(PHASES))
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    best = progress.get("best_score")
    best_text = f"best {best:.2f}" if isinstance(best, int | float) else "best -"
    trials, calls = progress.get("trials_done", 0), progress.get("lm_calls", 0)
    return f"  [{bar}] {phase:<10} trials {trials:<3} LM calls {calls:<4} {best_text}"


def run_optimization(
    *, owner: AbstractBaseUser, lm: LanguageModel, write: Callable[[str], Any], inline: bool, timeout: float = 300
) -> OptimizationRun:
    program, dataset = setup_program(owner, lm)
    run = optimization_start(
        program=program, owner=owner, optimizer="labeled_few_shot", dataset=dataset, metric="exact_match",
        config={"k": 4},
    )
    write(f"\nOptimizing '{program.name}' with labeled_few_shot on {dataset.examples.count()} examples "
          f"(run {run.pk}{', in this process' if inline else ', on the optimization queue'})")
    if inline:
        optimization_execute(run_id=run.pk)
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        run.refresh_from_db()
        line = progress_line(run)
        if line != last:  # one line per change, so the output reads well in a log as well as a terminal
            write(line)
            last = line
        if run.status not in ACTIVE_RUN_STATUSES or time.monotonic() > deadline:
            return run
        time.sleep(0.3)


def report(run: OptimizationRun, write: Callable[[str], Any]) -> None:
    if run.status != "succeeded":
        write(f"The optimization {run.status}: {run.error}")
        return
    write(f"Baseline (val):  {run.baseline_score:.2f}")
    write(f"Optimized (val): {run.final_score:.2f}")
    verdict = "promoted to the active version" if run.promoted else "kept for review (not better)"
    write(f"Version {run.result_version.number if run.result_version else '-'}: {verdict}")
