from __future__ import annotations

import dspy
import pytest

from cognitive.engine.modules import MultiChainComparison, build_module, lm_params, validate_module_config
from cognitive.engine.runner import dump_json_state, load_json_state, render_prompt
from cognitive.errors import InvalidInput

INPUTS = [{"name": "question", "type": "str", "description": ""}]
OUTPUTS = [{"name": "answer", "type": "int", "description": "a number"}]


@pytest.mark.parametrize(
    ("type_", "config"),
    [
        ("predict", {"temperature": 0.2, "max_tokens": 100}),
        ("chain_of_thought", {}),
        ("multi_chain_comparison", {"M": 4, "temperature": 1}),
        ("react", {"tools": ["calculator", "utc_today"], "max_iters": 3}),
    ],
)
def test_valid_configs_build(type_, config):
    assert validate_module_config(type_, config) == config
    module = build_module(type_, INPUTS, OUTPUTS, "Count.", config)
    assert isinstance(module, dspy.Module)
    assert lm_params(config) == {k: v for k, v in config.items() if k in ("temperature", "max_tokens")}


@pytest.mark.parametrize(
    ("type_", "config", "path"),
    [
        ("react", {}, "config.tools"),
        ("react", {"tools": []}, "config.tools"),
        ("react", {"tools": ["shell"]}, "config.tools[0]"),
        ("react", {"tools": ["calculator", "calculator"]}, "config.tools[1]"),
        ("react", {"tools": ["calculator"], "max_iters": 0}, "config.max_iters"),
        ("multi_chain_comparison", {"M": 1}, "config.M"),
        ("multi_chain_comparison", {"M": True}, "config.M"),
        ("predict", {"M": 3}, "config.M"),
        ("predict", {"tools": ["calculator"]}, "config.tools"),
        ("retrieve", {}, "type"),
    ],
)
def test_invalid_configs_name_their_path(type_, config, path):
    with pytest.raises(InvalidInput) as error:
        validate_module_config(type_, config)
    assert error.value.extra["path"] == path


def test_react_gets_only_registered_tools():
    module = build_module("react", INPUTS, OUTPUTS, "", {"tools": ["calculator"]})
    assert sorted(module.tools) == ["calculator", "finish"]
    assert module.tools["calculator"](expression="6 * 7") == "42"


def test_multi_chain_comparison_runs_m_attempts_then_compares():
    module = build_module("multi_chain_comparison", INPUTS, OUTPUTS, "", {"M": 2})
    assert isinstance(module, MultiChainComparison)
    lm = dspy.utils.DummyLM([{"reasoning": "r1", "answer": "1"}, {"reasoning": "r2", "answer": "2"},
                             {"rationale": "both", "answer": "2"}])
    with dspy.context(lm=lm):
        prediction = module(question="q")
    assert prediction.answer == 2


def test_state_round_trips_as_json_without_the_lm():
    module = build_module("chain_of_thought", INPUTS, OUTPUTS, "", {})
    module.predict.demos = [dspy.Example(question="1 + 1", answer=2)]
    module.predict.lm = dspy.LM("openai/somewhere", api_base="http://elsewhere")

    state = dump_json_state(module)

    assert state["predict"]["lm"] is None
    assert state["predict"]["demos"] == [{"question": "1 + 1", "answer": 2}]
    fresh = build_module("chain_of_thought", INPUTS, OUTPUTS, "", {})
    load_json_state(fresh, state)
    assert fresh.predict.demos[0]["answer"] == 2


def test_a_state_of_another_shape_is_a_domain_error():
    with pytest.raises(InvalidInput, match="does not fit this module"):
        load_json_state(build_module("chain_of_thought", INPUTS, OUTPUTS, "", {}), {"other": {}})


def test_prompts_render_with_placeholders_demos_and_instructions():
    state = dump_json_state(build_module("predict", INPUTS, OUTPUTS, "Count things.", {}))
    state["demos"] = [{"question": "How many legs has a cat?", "answer": 4}]

    [predictor] = render_prompt(input_fields=INPUTS, output_fields=OUTPUTS, instructions="Count things.",
                                module_type="predict", config={}, state=state)

    assert predictor["predictor"] == "self"
    assert predictor["instructions"] == "Count things."
    assert predictor["outputs"] == [{"name": "answer", "type": "int", "description": "a number"}]
    roles = [m["role"] for m in predictor["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert "How many legs has a cat?" in predictor["messages"][1]["content"]
    assert "{question}" in predictor["messages"][-1]["content"]
