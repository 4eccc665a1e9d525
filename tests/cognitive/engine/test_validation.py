"""Compose-time validation without a database: modules and corpora come from dictionaries."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cognitive.engine.plan import Const, ListOf, ObjectOf, Ref
from cognitive.engine.validation import (
    ModuleSignature,
    check_program_input,
    compile_pipeline,
    program_input_fields,
)
from cognitive.errors import InvalidInput
from cognitive.signatures import parse_signature


def signature(name: str, spec: str) -> ModuleSignature:
    parsed = parse_signature(spec)
    return ModuleSignature(name, parsed.inputs, parsed.outputs)


MODULES = {
    "qa": signature("qa", "question: str -> answer: str"),
    "rag_qa": signature("rag_qa", "question: str, context: list[str] -> answer: str, confidence: float"),
    "maybe": signature("maybe", "question: str, hint: Optional[str] -> answer: str"),
}


def compile_(spec):
    return compile_pipeline(spec, modules=MODULES.get, corpus_exists=lambda name: name == "docs")


RAG = {
    "steps": [
        {"id": "search", "parallel": [
            {"id": "keyword", "builtin": "retrieve", "corpus": "docs", "method": "bm25", "k": 5},
            {"id": "vector", "builtin": "retrieve", "corpus": "docs", "method": "vector"}]},
        {"id": "merge", "builtin": "merge", "inputs": {"lists": ["$keyword.passages", "$vector.passages"]}},
        {"id": "answer", "module": "rag_qa", "inputs": {"context": "$merge.passages"}, "retries": 1,
         "on_error": {"fallback": {"answer": "sorry", "confidence": 0}}},
    ],
}


def test_the_rag_spec_compiles_into_stages():
    plan = compile_(RAG)

    assert [(stage.id, stage.parallel, [s.id for s in stage.steps]) for stage in plan.stages] == [
        ("search", True, ["keyword", "vector"]), ("merge", False, ["merge"]), ("answer", False, ["answer"])]
    keyword = plan.stages[0].steps[0]
    assert keyword.options == {"k": 5, "method": "bm25", "corpus": "docs"}
    # Omitted inputs bind the program input by name.
    assert keyword.bindings["query"] == Ref("input", "query", "$input.query")
    assert plan.stages[1].steps[0].bindings["lists"] == ListOf(
        (Ref("keyword", "passages", "$keyword.passages"), Ref("vector", "passages", "$vector.passages")))
    answer = plan.stages[2].steps[0]
    assert answer.fallback == {"answer": "sorry", "confidence": 0.0}
    assert answer.retries == 1
    assert plan.returns == Ref("answer", None, "$answer")
    assert set(plan.input_uses) == {"query", "question"}
    assert program_input_fields(plan) == [
        {"name": "query", "types": ["str"], "required": True},
        {"name": "question", "types": ["str"], "required": True},
    ]


def test_return_defaults_to_the_last_stage_and_may_be_any_shape():
    plan = compile_({"steps": [{"id": "g", "parallel": [{"id": "a", "module": "qa"}, {"id": "b", "module": "qa"}]}]})
    assert plan.returns == ObjectOf((("a", Ref("a", None, "$a")), ("b", Ref("b", None, "$b"))))

    plan = compile_({"steps": [{"id": "a", "module": "qa"}], "return": {"x": "$a.answer", "fixed": [1, 2]}})
    assert plan.returns == ObjectOf((("x", Ref("a", "answer", "$a.answer")), ("fixed", Const([1, 2]))))


def test_program_input_is_checked_against_every_use():
    plan = compile_({"steps": [{"id": "a", "module": "maybe"}]})

    assert check_program_input(plan, {"question": "q"}) == {"question": "q"}
    assert check_program_input(plan, {"question": "q", "hint": None}) == {"question": "q", "hint": None}
    for given_input, field in [({}, "question"), ({"question": "q", "hint": 1}, "hint"), ({"question": "q", "x": 1},
                                                                                        "x")]:
        with pytest.raises(InvalidInput) as error:
            check_program_input(plan, given_input)
        assert error.value.extra["field"] == field


def test_retrieval_must_be_available():
    spec = {"steps": [{"id": "a", "builtin": "retrieve", "corpus": "docs"}]}
    with pytest.raises(InvalidInput, match="retrieval is not available"):
        compile_pipeline(spec, modules=MODULES.get, corpus_exists=None)


def test_a_compensation_may_produce_more_than_the_step():
    plan = compile_({"steps": [{"id": "a", "module": "qa", "on_error": {"compensate": {
        "id": "b", "module": "rag_qa", "inputs": {"context": ["fixed"]}}}}]})

    step = plan.stages[0].steps[0]
    assert step.compensate is not None and step.compensate.id == "b"
    assert [s.id for s in plan.steps()] == ["a", "b"]


def test_a_step_limit_applies():
    spec = {"steps": [{"id": f"s{i}", "module": "qa"} for i in range(51)]}
    with pytest.raises(InvalidInput, match="at most 50 steps"):
        compile_(spec)


any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6)
    | st.sampled_from(["$input.question", "$a.answer", "$a", "qa", "rag_qa", "retrieve", "merge", "docs", "a"]),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["steps", "id", "module", "builtin", "parallel", "inputs", "return", "on_error",
                                       "fallback", "compensate", "retries", "corpus", "k", "question", "context"]),
                      inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(spec=any_json | st.fixed_dictionaries({"steps": st.lists(any_json, max_size=4)}))
def test_compiling_random_json_only_ever_raises_invalid_input(spec):
    try:
        compile_(spec)
    except InvalidInput as exc:
        assert exc.message and "path" in exc.extra
