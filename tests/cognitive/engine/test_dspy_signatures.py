"""Parsed signatures become dspy.Signature classes with the right fields and typing objects."""

from __future__ import annotations

import inspect
import typing
import warnings
from typing import Any, Literal, Optional, Union

import dspy
import pytest
from dspy.utils import DummyLM
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cognitive.engine.dspy_signatures import build_dspy_signature, build_dspy_signature_from_fields
from cognitive.errors import InvalidInput
from cognitive.signatures import (
    RESERVED_BY_PREDICT,
    RESERVED_BY_SIGNATURE,
    TypeExpr,
    field_name_problem,
    parse_signature,
)
from tests.cognitive.test_signatures import SETTINGS, TRICKY_NAMES, SpecCase, valid_specs

_BASIC: dict[str, Any] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "list": list,
    "dict": dict,
    "tuple": tuple,
}


def expected_annotation(t: TypeExpr) -> Any:
    """Independent oracle: the typing object a TypeExpr must become."""
    if t.name == "Literal":
        return Literal[t.args]
    args = tuple(... if a is ... else expected_annotation(a) for a in t.args)
    if t.name == "Optional":
        return Optional[args[0]]  # noqa: UP045 - the form DSPy builds
    if t.name == "Union":
        return Union[args]  # noqa: UP007 - the form DSPy builds
    return _BASIC[t.name][args] if args else _BASIC[t.name]


def build_quietly(*args: Any, **kwargs: Any) -> type[dspy.Signature]:
    # pydantic reports shadowed or protected field names as UserWarnings; a valid spec must trigger none.
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        return build_dspy_signature(*args, **kwargs)


instructions_text = st.one_of(st.just(""), st.text(alphabet="abc XYZ.,!é\n", max_size=40).map(str.strip))
descriptions_text = st.text(alphabet="abc xyz.-", min_size=1, max_size=20)


@SETTINGS
@given(valid_specs(), instructions_text, st.data())
def test_generated_specs_build_matching_signatures(case: SpecCase, instructions: str, data: st.DataObject) -> None:
    names = [f.name for f in case.expected.inputs + case.expected.outputs]
    described = data.draw(st.lists(st.sampled_from(names), unique=True))
    descriptions = {n: data.draw(descriptions_text) for n in described}
    parsed = parse_signature(case.text, instructions, descriptions)

    signature = build_quietly(parsed, "Generated")

    assert signature.__name__ == "Generated"
    for side, dspy_fields in (
        (case.expected.inputs, signature.input_fields),
        (case.expected.outputs, signature.output_fields),
    ):
        assert list(dspy_fields) == [f.name for f in side]
        for field in side:
            info = dspy_fields[field.name]
            assert info.annotation == expected_annotation(field.type), field.type.render()
            assert info.json_schema_extra["desc"] == descriptions.get(field.name, f"${{{field.name}}}")
    if instructions:
        # DSPy reads instructions as a docstring, so it applies inspect.cleandoc to them.
        assert signature.instructions == inspect.cleandoc(instructions)
    else:
        assert signature.instructions.startswith("Given the fields")


# Fewer examples: dspy.Signature(str) is the slow part, and the oracle above already covers types.
@settings(SETTINGS, max_examples=100)
@given(valid_specs(negative_ints=False))
def test_generated_specs_agree_with_dspys_own_parser(case: SpecCase) -> None:
    parsed = parse_signature(case.text)
    canonical = parsed.render()
    # Known gaps in DSPy's parser, not ours: it splits on every "->" (even inside
    # strings) and cannot read `-1` (a unary minus node, excluded by the strategy).
    assume(canonical.count("->") == 1)

    ours = build_quietly(parsed)
    theirs = dspy.Signature(canonical)  # test-generated text only; never user input

    assert list(ours.input_fields) == list(theirs.input_fields)
    assert list(ours.output_fields) == list(theirs.output_fields)
    for name, info in ours.fields.items():
        assert info.annotation == theirs.fields[name].annotation, name


@pytest.mark.parametrize(
    "spec",
    [
        "question: str, context: list[str] -> answer: str, confidence: float",
        "q -> a",
        "a: int | None -> b: dict[str, list[int]]",
        "a: Optional[int], b: int | str -> c: Union[int, str, None]",
        "a: Literal['x', 'y'], b: tuple[int, ...], c: tuple[int, str] -> d: bool, e: list",
        "a: list[Literal[1, 2, True]] -> b: dict[str, Optional[float]]",
    ],
)
def test_simple_specs_match_dspy(spec: str) -> None:
    ours = build_quietly(parse_signature(spec, "Be terse."))
    theirs = dspy.Signature(spec, "Be terse.")
    assert list(ours.fields) == list(theirs.fields)
    assert [f.annotation for f in ours.fields.values()] == [f.annotation for f in theirs.fields.values()]
    assert [f.json_schema_extra["__dspy_field_type"] for f in ours.fields.values()] == [
        f.json_schema_extra["__dspy_field_type"] for f in theirs.fields.values()
    ]
    assert ours.instructions == theirs.instructions == "Be terse."


def test_default_instructions_match_dspy() -> None:
    ours = build_quietly(parse_signature("q, c -> a", "   "))
    assert ours.instructions == dspy.Signature("q, c -> a").instructions


def test_build_from_stored_fields_matches_direct_build() -> None:
    parsed = parse_signature("q: list[str], c -> a: Optional[int]", "Do it.", {"q": "the question"})
    direct = build_quietly(parsed)
    stored = build_dspy_signature_from_fields(
        [f.as_dict() for f in parsed.inputs], [f.as_dict() for f in parsed.outputs], "Do it."
    )
    assert stored.instructions == direct.instructions == "Do it."
    assert {n: (f.annotation, f.json_schema_extra) for n, f in stored.fields.items()} == {
        n: (f.annotation, f.json_schema_extra) for n, f in direct.fields.items()
    }
    assert list(stored.input_fields) == ["q", "c"]


def test_build_from_stored_fields_rejects_bad_rows() -> None:
    with pytest.raises(InvalidInput, match="unknown type 'strng' for field 'a'"):
        build_dspy_signature_from_fields([{"name": "q", "type": "str"}], [{"name": "a", "type": "strng"}], "")


def test_built_signature_runs_in_predict() -> None:
    signature = build_quietly(parse_signature("question, context: list[str] -> answer, confidence: float"))
    lm = DummyLM([{"answer": "Paris", "confidence": "0.9"}])
    with dspy.context(lm=lm):
        prediction = dspy.Predict(signature)(question="Capital of France?", context=["France"])
    assert (prediction.answer, prediction.confidence) == ("Paris", 0.9)


# --------------------------------------------------------------------------- reserved names vs. live dspy


def _live_reserved_names() -> set[str]:
    return {n for n in set(dir(dspy.Signature)) | set(dir(type(dspy.Signature))) if not n.startswith("_")}


def test_every_signature_attribute_is_reserved() -> None:
    # Fails when a dspy/pydantic upgrade adds an attribute a field could shadow.
    missing = sorted(n for n in _live_reserved_names() if field_name_problem(n) is None)
    assert missing == []


def _dspy_objects_to(name: str) -> bool:
    """True if dspy raises, warns, or drops the field when `name` is used."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            built = dspy.make_signature({name: (int, dspy.InputField()), "out": (str, dspy.OutputField())}, "x")
        except Exception:  # any failure counts: we only ask whether dspy accepts the name
            return True
    return bool(caught) or list(built.input_fields) != [name]


@pytest.mark.parametrize("name", [*sorted(RESERVED_BY_SIGNATURE), "_x", "__x", "model_dump_x", "model_validatex"])
def test_reserved_names_really_trouble_dspy(name: str) -> None:
    assert field_name_problem(name) is not None
    assert _dspy_objects_to(name)


@pytest.mark.parametrize("name", sorted(RESERVED_BY_PREDICT))
def test_predict_reserved_names_are_predict_arguments(name: str) -> None:
    assert f'"{name}"' in inspect.getsource(dspy.Predict._forward_preprocess)


@pytest.mark.parametrize("name", TRICKY_NAMES)
def test_allowed_tricky_names_are_fine_for_dspy(name: str) -> None:
    assert field_name_problem(name) is None
    assert not _dspy_objects_to(name)


def test_union_annotations_use_typing_union() -> None:
    # DSPy builds typing.Union, not types.UnionType; keep the same objects so prompts render alike.
    signature = build_quietly(parse_signature("a: int | str -> b"))
    assert typing.get_origin(signature.input_fields["a"].annotation) is Union
