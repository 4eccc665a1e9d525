"""Maps optimizer types to DSPy teleprompters and validates configs against their real arguments."""

from __future__ import annotations

from typing import Any

import dspy
from dspy.teleprompt import (
    COPRO,
    GEPA,
    SIMBA,
    BootstrapFewShot,
    BootstrapFewShotWithRandomSearch,
    LabeledFewShot,
    MIPROv2,
)

from cognitive.engine.config_schema import (
    accepted_parameters,
    check_value_type,
    require_object,
)
from cognitive.engine.optimizer_bounds import check_optimizer_bound
from cognitive.errors import InvalidInput

OPTIMIZER_CLASSES: dict[str, type] = {
    "bootstrap_few_shot": BootstrapFewShot,
    "bootstrap_random_search": BootstrapFewShotWithRandomSearch,
    "mipro_v2": MIPROv2,
    "simba": SIMBA,
    "gepa": GEPA,
    "copro": COPRO,
    "labeled_few_shot": LabeledFewShot,
}

RETIRED_TYPES = {
    "beacon": "'beacon' is not a DSPy optimizer; use 'bootstrap_random_search' or 'mipro_v2' instead",
    "bootstrap": "use 'bootstrap_few_shot'",
    "mipro": "use 'mipro_v2'",
}

# The platform supplies these (metric from the registry, LMs by name, data from datasets);
# they are never taken from user config, and neither are callables or file/telemetry outputs.
_PLATFORM_OWNED = {
    "metric",
    "prompt_model",
    "task_model",
    "reflection_lm",
    "teacher_settings",
    "instruction_proposer",
    "code_proposer",
    "component_selector",
    "log_dir",
    "use_wandb",
    "wandb_api_key",
    "wandb_init_kwargs",
    "use_mlflow",
    "gepa_kwargs",
    "student",
    "teacher",
    "trainset",
    "valset",
    "eval_kwargs",
    "restrict",
    "requires_permission_to_run",
    "provide_traceback",
    "verbose",
}


def _placeholder_metric(example: Any, prediction: Any, trace: Any = None, *args: Any, **kwargs: Any) -> float:
    return 0.0


def split_optimizer_config(optimizer_type: str, config: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate `config` and split it into constructor kwargs and `compile()` kwargs."""
    if optimizer_type in RETIRED_TYPES:
        raise InvalidInput(f"unknown optimizer type '{optimizer_type}': {RETIRED_TYPES[optimizer_type]}")
    cls = OPTIMIZER_CLASSES.get(optimizer_type)
    if cls is None:
        raise InvalidInput(
            f"unknown optimizer type '{optimizer_type}'; choose one of {', '.join(OPTIMIZER_CLASSES)}",
            {"path": "type"},
        )
    where = f"optimizer '{optimizer_type}'"
    config = require_object(config, where)
    init_params = accepted_parameters(cls.__init__, _PLATFORM_OWNED)
    compile_params = accepted_parameters(cls.compile, _PLATFORM_OWNED)
    init_kwargs: dict[str, Any] = {}
    compile_kwargs: dict[str, Any] = {}
    for key, value in config.items():
        if key in init_params:
            check_value_type(key, value, init_params[key], where)
            init_kwargs[key] = value
        elif key in compile_params:
            check_value_type(key, value, compile_params[key], where)
            compile_kwargs[key] = value
        else:
            allowed = sorted(set(init_params) | set(compile_params))
            raise InvalidInput(
                f"{where} does not accept '{key}'; accepted: {', '.join(allowed)}",
                {"field": key, "path": f"config.{key}"},
            )
        check_optimizer_bound(key, value, where)
    _instantiate(cls, init_kwargs, where)
    return init_kwargs, compile_kwargs


def _instantiate(cls: type, init_kwargs: dict[str, Any], where: str) -> Any:
    """Constructing the teleprompter runs DSPy's own argument checks (e.g. GEPA's budget rule)."""
    kwargs = dict(init_kwargs)
    params = accepted_parameters(cls.__init__, ())
    if "metric" in params:
        kwargs["metric"] = _placeholder_metric
    # GEPA needs a reflection LM and MIPROv2 a default LM just to construct; nothing is called here,
    # and the platform supplies the real LMs when it runs.
    stand_in_lm = dspy.LM("openai/config-check-only")
    if "reflection_lm" in params:
        kwargs["reflection_lm"] = stand_in_lm
    try:
        with dspy.context(lm=stand_in_lm):
            return cls(**kwargs)
    except (AssertionError, ValueError, TypeError) as exc:
        raise InvalidInput(f"{where}: {exc}".strip(), {"path": "config"}) from None


def validate_optimizer_config(optimizer_type: str, config: Any) -> dict[str, Any]:
    split_optimizer_config(optimizer_type, config)
    return config
