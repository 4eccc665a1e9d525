"""Upper bounds on the optimizer arguments that multiply LM calls and tokens.

Grouped by what they multiply, one setting per group, so an operator reasons about a handful of
numbers rather than one per DSPy argument. Every run also has an LM-call and cost budget; these
bounds stop a config that could never finish inside it (and the memory a million demos would take).
"""

from __future__ import annotations

from typing import Any

from cognitive.engine.limits import limit
from cognitive.errors import InvalidInput

# argument -> (setting holding its maximum, smallest sensible value)
_BOUNDED: dict[str, tuple[str, int]] = {
    # demos per predictor: each one is in every prompt
    "max_bootstrapped_demos": ("DSPEX_OPTIMIZER_MAX_DEMOS", 0),
    "max_labeled_demos": ("DSPEX_OPTIMIZER_MAX_DEMOS", 0),
    "max_demos": ("DSPEX_OPTIMIZER_MAX_DEMOS", 0),
    "k": ("DSPEX_OPTIMIZER_MAX_DEMOS", 0),
    # rounds and steps: each one re-runs the program over the data
    "max_rounds": ("DSPEX_OPTIMIZER_MAX_ROUNDS", 1),
    "max_steps": ("DSPEX_OPTIMIZER_MAX_ROUNDS", 1),
    "depth": ("DSPEX_OPTIMIZER_MAX_ROUNDS", 1),
    "max_full_evals": ("DSPEX_OPTIMIZER_MAX_ROUNDS", 1),
    "max_merge_invocations": ("DSPEX_OPTIMIZER_MAX_ROUNDS", 0),
    # candidates and trials: each one is scored on the data
    "num_candidate_programs": ("DSPEX_OPTIMIZER_MAX_CANDIDATES", 1),
    "num_candidates": ("DSPEX_OPTIMIZER_MAX_CANDIDATES", 1),
    "num_trials": ("DSPEX_OPTIMIZER_MAX_CANDIDATES", 1),
    "breadth": ("DSPEX_OPTIMIZER_MAX_CANDIDATES", 2),
    # examples per batch: each one is an LM call per step
    "minibatch_size": ("DSPEX_OPTIMIZER_MAX_BATCH", 1),
    "bsize": ("DSPEX_OPTIMIZER_MAX_BATCH", 1),
    "reflection_minibatch_size": ("DSPEX_OPTIMIZER_MAX_BATCH", 1),
    "view_data_batch_size": ("DSPEX_OPTIMIZER_MAX_BATCH", 1),
    "minibatch_full_eval_steps": ("DSPEX_OPTIMIZER_MAX_BATCH", 1),
    # metric calls in all
    "max_metric_calls": ("DSPEX_OPTIMIZER_MAX_METRIC_CALLS", 1),
    # threads: parallel LM calls from one worker
    "num_threads": ("DSPEX_OPTIMIZATION_THREADS", 1),
}


def bounded_arguments() -> dict[str, tuple[int, int]]:
    """Each bounded argument with its (minimum, maximum) under the current settings."""
    return {key: (minimum, limit(name)) for key, (name, minimum) in _BOUNDED.items()}


def check_optimizer_bound(key: str, value: Any, where: str) -> None:
    if key not in _BOUNDED or value is None:
        return
    name, minimum = _BOUNDED[key]
    maximum = limit(name)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise InvalidInput(
            f"{where}: '{key}' must be an integer from {minimum} to {maximum} ({name}), got {value!r}",
            {"field": key, "path": f"config.{key}"},
        )
