"""Runs a DSPy optimizer over a program's pipeline: the DSPy half of an optimization run.

The pipeline becomes one `dspy.Module` (`PipelineProgram`) whose parameters are the module
steps, so every optimizer sees the predictors it expects and DSPy's deep copies carry the
step modules while the plan, LMs and retrieval stay shared. A `OptimizationMeter` callback
counts LM calls, tokens and cost, records each candidate the optimizer scores as a trial,
keeps the best candidate's state, and stops the optimizer (budget, cancel, lost lease) by
raising `OptimizationStopped` from the LM hook. It is a `BaseException` on purpose: DSPy's
optimizers and evaluators catch `Exception` per example and would carry on.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dspy

from cognitive.engine.config_schema import accepted_parameters
from cognitive.engine.errors import transient_failure
from cognitive.engine.metrics import LanguageModelLookup, get_metric
from cognitive.engine.optimizers import OPTIMIZER_CLASSES
from cognitive.engine.pipeline import PipelineEnv, run_pipeline
from cognitive.engine.plan import PipelinePlan
from cognitive.engine.runner import PreparedModule, dump_json_state, load_json_state
from cognitive.engine.tracing import StepTrace
from cognitive.engine.validation import check_program_input
from cognitive.errors import RetryableError

STOP_BUDGET = "budget"
STOP_CANCELLED = "cancelled"
STOP_LOST = "lost"
# An LM call failed in a way that passes by itself (a rate limit, a 5xx): the run retries later
# rather than scoring the failed examples 0, which would make the scores wrong.
STOP_TRANSIENT = "transient"


class OptimizationStopped(BaseException):
    """Unwinds a running optimizer from inside an LM call."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Shared:
    """What DSPy's deep copies of the program must share, not copy: the plan, the LMs, retrieval."""

    def __init__(self, plan: PipelinePlan, prepared: Mapping[str, PreparedModule], env: Mapping[str, Any]) -> None:
        self.plan = plan
        self.prepared = dict(prepared)
        self.env = dict(env)

    def __deepcopy__(self, memo: dict[int, Any]) -> _Shared:
        return self


class PipelineProgram(dspy.Module):
    """A whole pipeline as one DSPy module; `steps` maps step id to that step's (optimizable) module."""

    def __init__(
        self, plan: PipelinePlan, prepared: Mapping[str, PreparedModule], *,
        retrieve: Callable[..., list[str]] | None = None, thread_exit: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__()
        self.steps = {step_id: module.module for step_id, module in prepared.items()}
        self._shared = _Shared(plan, prepared, {"retrieve": retrieve, "thread_exit": thread_exit})

    def forward(self, **inputs: Any) -> dspy.Prediction:
        shared = self._shared
        modules = {
            step_id: dataclasses.replace(shared.prepared[step_id], module=module)
            for step_id, module in self.steps.items()
        }
        env = PipelineEnv(
            modules=modules, on_step=lambda run: None, retrieve=shared.env["retrieve"],
            thread_exit=shared.env["thread_exit"],
        )
        result = run_pipeline(shared.plan, check_program_input(shared.plan, inputs), env)
        output = result.output
        return dspy.Prediction(**output) if isinstance(output, Mapping) else dspy.Prediction(output=output)

    def state(self) -> dict[str, Any]:
        """Each step's DSPy JSON state, as a ProgramVersion stores it."""
        return {step_id: dump_json_state(module) for step_id, module in self.steps.items()}

    def with_state(self, state: Mapping[str, Any]) -> PipelineProgram:
        program = self.deepcopy()
        for step_id, step_state in state.items():
            if step_id in program.steps:
                load_json_state(program.steps[step_id], step_state)
        return program


@dataclass
class Budget:
    max_lm_calls: int | None = None
    max_cost: float | None = None

    def reached(self, calls: int, cost: float) -> bool:
        return (self.max_lm_calls is not None and calls >= self.max_lm_calls) or (
            self.max_cost is not None and cost >= self.max_cost
        )


@dataclass
class Trial:
    n: int
    score: float
    phase: str


class OptimizationMeter(StepTrace):
    """Counts LM usage, records trials and stops the optimizer. Thread-safe; keeps no messages.

    A StepTrace subclass so `TracedLM` hands it each call's usage and cost (see tracing.py),
    but it overrides every hook so nothing per call is kept.
    """

    def __init__(self, budget: Budget | None = None) -> None:
        super().__init__()
        self.budget = budget or Budget()
        self.phase = "starting"
        self.lm_calls = 0
        self.optimizer_lm_calls = 0
        self.tokens = 0
        self.cost = 0.0
        self.optimizer_cost = 0.0
        self.trials: list[dict[str, Any]] = []
        self.best_score: float | None = None
        self.best_state: dict[str, Any] | None = None  # of the best candidate we could capture
        self.best_state_score: float | None = None
        self.budget_reached = False
        self.enforce_budget = False
        self._stop_reason: str | None = None
        self.transient: RetryableError | None = None  # why the run stopped with STOP_TRANSIENT
        self._evaluating: dict[str, Any] = {}
        self._version = 0  # bumped on every change, so writers know when there is something new
        self._meter_lock = threading.Lock()

    # -- control

    def stop(self, reason: str) -> None:
        with self._meter_lock:
            self._stop_reason = self._stop_reason or reason

    @property
    def stop_reason(self) -> str | None:
        return self._stop_reason

    def set_phase(self, phase: str, *, enforce_budget: bool = False) -> None:
        with self._meter_lock:
            self.phase = phase
            self.enforce_budget = enforce_budget
            self._version += 1

    # -- DSPy hooks

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        with self._meter_lock:
            if self._stop_reason is not None:
                raise OptimizationStopped(self._stop_reason)
            if self.enforce_budget:
                if self.budget.reached(self.optimizer_lm_calls, self.optimizer_cost):
                    self.budget_reached = True
                    raise OptimizationStopped(STOP_BUDGET)
                self.optimizer_lm_calls += 1
            self.lm_calls += 1
            self._version += 1

    def on_lm_end(self, call_id: str, outputs: Any, exception: BaseException | None = None) -> None:
        transient = transient_failure(exception) if exception is not None else None
        if transient is not None:
            with self._meter_lock:
                self.transient = self.transient or transient
                self._stop_reason = self._stop_reason or STOP_TRANSIENT

    def on_tool_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        return None

    def on_tool_end(self, call_id: str, outputs: Any, exception: BaseException | None = None) -> None:
        return None

    def add_lm_entry(self, call_id: str | None, entry: Mapping[str, Any]) -> None:
        usage = entry.get("usage") or {}
        tokens = int(usage.get("total_tokens") or 0)
        cost = float(entry.get("cost") or 0.0)
        with self._meter_lock:
            self.tokens += tokens
            self.cost += cost
            if self.enforce_budget:
                self.optimizer_cost += cost
            self._version += 1

    def _add_call_usage(self, call_id: str | None, usage: Mapping[str, Any]) -> None:
        return None

    def on_evaluate_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        if self.phase == "compiling" and isinstance(inputs.get("program"), PipelineProgram):
            with self._meter_lock:
                self._evaluating[call_id] = inputs["program"]

    def on_evaluate_end(self, call_id: str, outputs: Any | None, exception: BaseException | None = None) -> None:
        with self._meter_lock:
            program = self._evaluating.pop(call_id, None)
        score = getattr(outputs, "score", None)
        if program is None or exception is not None or not isinstance(score, int | float):
            return
        # dspy.Evaluate reports a percentage.
        self.add_trial(score / 100.0, program=program)

    # -- trials

    def add_trial(self, score: float, *, program: PipelineProgram | None = None, phase: str | None = None) -> None:
        state = program.state() if program is not None else None
        with self._meter_lock:
            self.trials.append(
                dataclasses.asdict(Trial(n=len(self.trials) + 1, score=round(score, 4), phase=phase or self.phase))
            )
            if self.best_score is None or score > self.best_score:
                self.best_score = score
            if state is not None and (self.best_state_score is None or score > self.best_state_score):
                self.best_state_score, self.best_state = score, state
            self._version += 1

    # -- reading

    @property
    def version(self) -> int:
        return self._version

    def snapshot(self) -> dict[str, Any]:
        with self._meter_lock:
            return {
                "phase": self.phase,
                "trials_done": len(self.trials),
                "best_score": None if self.best_score is None else round(self.best_score, 4),
                "lm_calls": self.lm_calls,
                "optimizer_lm_calls": self.optimizer_lm_calls,
                "optimizer_cost": round(self.optimizer_cost, 8),
                "tokens": self.tokens,
                "cost": round(self.cost, 8),
                "budget_reached": self.budget_reached,
            }

    def trial_list(self) -> list[dict[str, Any]]:
        with self._meter_lock:
            return [dict(trial) for trial in self.trials]


# --------------------------------------------------------------------------- examples and scores


def to_examples(records: list[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> list[dspy.Example]:
    """(inputs, outputs) pairs as DSPy examples with their inputs marked."""
    return [dspy.Example(**dict(inputs), **dict(outputs)).with_inputs(*inputs.keys()) for inputs, outputs in records]


def planned_trials(
    optimizer_type: str, init_kwargs: Mapping[str, Any], compile_kwargs: Mapping[str, Any]
) -> int | None:
    """Roughly how many candidates the optimizer will score; None when it decides for itself."""
    if optimizer_type in ("bootstrap_few_shot", "labeled_few_shot"):
        return 1
    if optimizer_type == "bootstrap_random_search":
        return int(init_kwargs.get("num_candidate_programs", 16)) + 3
    if optimizer_type == "copro":
        return int(init_kwargs.get("breadth", 10)) * int(init_kwargs.get("depth", 3))
    if optimizer_type == "simba":
        return int(init_kwargs.get("max_steps", 8))
    if optimizer_type == "mipro_v2":
        trials = compile_kwargs.get("num_trials")
        return int(trials) + 1 if isinstance(trials, int) else None
    if optimizer_type == "gepa":
        evals = init_kwargs.get("max_full_evals")
        return int(evals) if isinstance(evals, int) else None
    return None


@dataclass
class CompileOutcome:
    program: PipelineProgram
    notes: list[str] = field(default_factory=list)


class OptimizationSession:
    """One optimization: baseline, compile, final score. Every LM call goes through `meter`."""

    def __init__(
        self, *, program: PipelineProgram, lm: dspy.BaseLM, optimizer_type: str, init_kwargs: Mapping[str, Any],
        compile_kwargs: Mapping[str, Any], metric: str, metric_config: Mapping[str, Any] | None,
        train: list[dspy.Example], val: list[dspy.Example], meter: OptimizationMeter,
        language_models: LanguageModelLookup, num_threads: int = 4,
    ) -> None:
        """`language_models` finds LM configurations by name for the metric (the `llm_judge`'s LM)."""
        self.program = program
        self.lm = lm
        self.optimizer_type = optimizer_type
        self.init_kwargs = dict(init_kwargs)
        self.compile_kwargs = dict(compile_kwargs)
        self.metric_name = metric
        self.metric_config = dict(metric_config or {})
        self.train = train
        self.val = val
        self.meter = meter
        self.num_threads = num_threads
        self.language_models = language_models

    def _context(self) -> Any:
        return dspy.context(lm=self.lm, callbacks=[self.meter], num_threads=self.num_threads)

    def evaluate(self, program: PipelineProgram, phase: str) -> float:
        """Mean metric on the val split; an example whose run fails scores 0."""
        self.meter.set_phase(phase)
        metric = get_metric(self.metric_name, config=self.metric_config, language_models=self.language_models)
        evaluator = dspy.Evaluate(
            devset=self.val, metric=metric, num_threads=self.num_threads, max_errors=len(self.val) + 1,
            display_progress=False, failure_score=0.0,
        )
        with self._context():
            result = evaluator(program)
        scores = [float(score or 0.0) for _, _, score in result.results]
        return sum(scores) / len(scores) if scores else 0.0

    def compile(self) -> CompileOutcome:
        """Run the optimizer. A budget stop keeps the best candidate scored so far, else the starting program."""
        cls = OPTIMIZER_CLASSES[self.optimizer_type]
        init = dict(self.init_kwargs)
        params = accepted_parameters(cls.__init__, ())
        if "metric" in params:
            init["metric"] = get_metric(
                self.metric_name, config=self.metric_config, for_gepa=self.optimizer_type == "gepa",
                language_models=self.language_models,
            )
        for lm_param in ("reflection_lm", "prompt_model", "task_model"):
            if lm_param in params:
                init[lm_param] = self.lm
        if self.optimizer_type == "gepa":
            init.setdefault("track_stats", True)
        self.meter.set_phase("compiling", enforce_budget=True)
        try:
            with self._context():
                optimizer = cls(**init)
                compiled = optimizer.compile(self.program, trainset=self.train, **self.compile_kwargs)
        except OptimizationStopped as stop:
            if stop.reason != STOP_BUDGET:
                raise
            return self._best_so_far()
        finally:
            self.meter.set_phase("compiled")
        if not isinstance(compiled, PipelineProgram):
            compiled = self.program
        self._record_optimizer_trials(compiled)
        return CompileOutcome(program=compiled)

    def _best_so_far(self) -> CompileOutcome:
        spent = f"{self.meter.optimizer_lm_calls} optimizer LM calls costing ${self.meter.optimizer_cost:.6f}"
        if self.meter.best_state is not None:
            note = (
                f"budget reached after {spent}; kept the best candidate so far "
                f"(train score {self.meter.best_state_score:.3f})"
            )
            return CompileOutcome(program=self.program.with_state(self.meter.best_state), notes=[note])
        note = f"budget reached after {spent} before any candidate was scored; kept the baseline"
        return CompileOutcome(program=self.program, notes=[note])

    def _record_optimizer_trials(self, compiled: Any) -> None:
        """Optimizers that score candidates without dspy.Evaluate (SIMBA, GEPA) report them on the result."""
        if self.meter.trials:
            return
        for candidate in getattr(compiled, "candidate_programs", None) or []:
            score = candidate.get("score") if isinstance(candidate, Mapping) else None
            if isinstance(score, int | float):
                self.meter.add_trial(float(score), phase="compiling")
        details = getattr(compiled, "detailed_results", None)
        for score in getattr(details, "val_aggregate_scores", None) or []:
            if isinstance(score, int | float):
                self.meter.add_trial(float(score), phase="compiling")
