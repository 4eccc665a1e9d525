"""The signature language: good specs, bad specs with exact error positions, and properties.

The hypothesis strategies here (`type_exprs`, `valid_specs`, ...) are reused by
tests/cognitive/engine/test_dspy_signatures.py.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cognitive.errors import InvalidInput
from cognitive.signatures import (
    MAX_SPEC_LENGTH,
    MAX_TYPE_DEPTH,
    Field,
    ParsedSignature,
    TypeExpr,
    field_name_problem,
    parse_signature,
    parse_type,
    signature_complexity,
    signature_from_fields,
    type_cost,
)

SETTINGS = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def fields_of(parsed: ParsedSignature) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    return (
        [(f.name, f.type.render()) for f in parsed.inputs],
        [(f.name, f.type.render()) for f in parsed.outputs],
    )


# --------------------------------------------------------------------------- good specs

GOOD = [
    (
        "question: str, context: list[str] -> answer: str, confidence: float",
        [("question", "str"), ("context", "list[str]")],
        [("answer", "str"), ("confidence", "float")],
    ),
    ("q -> a", [("q", "str")], [("a", "str")]),
    ("x->y", [("x", "str")], [("y", "str")]),
    ("  a :int ,\n\tb:bool->  c : float  ", [("a", "int"), ("b", "bool")], [("c", "float")]),
    ("a: dict[str, int] -> b: dict[str, list[int]]", [("a", "dict[str, int]")], [("b", "dict[str, list[int]]")]),
    ("a: Dict[str, List[int]] -> b: Tuple[int, str]", [("a", "dict[str, list[int]]")], [("b", "tuple[int, str]")]),
    ("a: tuple[int, ...] -> b: tuple[int]", [("a", "tuple[int, ...]")], [("b", "tuple[int]")]),
    ("a: list -> b: dict, c: tuple", [("a", "list")], [("b", "dict"), ("c", "tuple")]),
    ("a: int | None -> b: None | str", [("a", "Optional[int]")], [("b", "Optional[str]")]),
    ("a: Optional[int] -> b: Union[int, None]", [("a", "Optional[int]")], [("b", "Optional[int]")]),
    ("a: int | str -> b: Union[int, str, float]", [("a", "Union[int, str]")], [("b", "Union[int, str, float]")]),
    (
        "a: int | str | None -> b: Optional[int | str]",
        [("a", "Optional[Union[int, str]]")],
        [("b", "Optional[Union[int, str]]")],
    ),
    ("a: Union[int] -> b: int | int", [("a", "int")], [("b", "int")]),
    (
        "a: Optional[Optional[int]] -> b: Union[int, Union[str, int]]",
        [("a", "Optional[int]")],
        [("b", "Union[int, str]")],
    ),
    (
        'a: Literal["a", "b"] -> b: Literal[\'x\', 1, -2, True, False]',
        [("a", 'Literal["a", "b"]')],
        [("b", 'Literal["x", 1, -2, True, False]')],
    ),
    ('a: Literal["a", "a", 1, True, 1] -> b', [("a", 'Literal["a", 1, True]')], [("b", "str")]),
    (
        'a: Literal["q\\"uote", \'it\\\'s\', "back\\\\slash\\n"] -> b',
        [("a", 'Literal["q\\"uote", "it\'s", "back\\\\slash\\n"]')],
        [("b", "str")],
    ),
    ('a: Literal["->", ",", ":", "[", "]"] -> b', [("a", 'Literal["->", ",", ":", "[", "]"]')], [("b", "str")]),
    (
        "a: list[int | None] -> b: dict[str, Literal[1, 2] | None]",
        [("a", "list[Optional[int]]")],
        [("b", "dict[str, Optional[Literal[1, 2]]]")],
    ),
    # Field names may shadow type names and soft keywords; DSPy accepts them.
    (
        "str: int, type, match -> list: str, model_name",
        [("str", "int"), ("type", "str"), ("match", "str")],
        [("list", "str"), ("model_name", "str")],
    ),
    ("ñame: str -> résumé", [("ñame", "str")], [("résumé", "str")]),
    (
        "a: " + "list[" * MAX_TYPE_DEPTH + "str" + "]" * MAX_TYPE_DEPTH + " -> b",
        [("a", "list[" * MAX_TYPE_DEPTH + "str" + "]" * MAX_TYPE_DEPTH)],
        [("b", "str")],
    ),
]


@pytest.mark.parametrize(("spec", "inputs", "outputs"), GOOD)
def test_good_specs(spec: str, inputs: list, outputs: list) -> None:
    parsed = parse_signature(spec)
    assert fields_of(parsed) == (inputs, outputs)
    assert parse_signature(parsed.render()) == parsed


def test_instructions_and_descriptions() -> None:
    parsed = parse_signature("q: str -> a: int", "Answer briefly.", {"a": "the answer"})
    assert parsed.instructions == "Answer briefly."
    assert parsed.inputs == (Field("q", TypeExpr("str"), ""),)
    assert parsed.outputs == (Field("a", TypeExpr("int"), "the answer"),)
    assert parsed.outputs[0].as_dict() == {"name": "a", "type": "int", "description": "the answer"}


@pytest.mark.parametrize(
    ("descriptions", "message", "path"),
    [
        ({"zz": "x"}, "unknown field 'zz'", "descriptions.zz"),
        ({"q": 3}, "must be a string", "descriptions.q"),
        (["q"], "must map", "descriptions"),
    ],
)
def test_bad_descriptions(descriptions: object, message: str, path: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        parse_signature("q -> a", descriptions=descriptions)  # type: ignore[arg-type]
    assert caught.value.extra["path"] == path


def test_bad_instructions() -> None:
    with pytest.raises(InvalidInput, match="instructions must be a string"):
        parse_signature("q -> a", None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- bad specs

DEEP = "a: " + "list[" * (MAX_TYPE_DEPTH + 1) + "str" + "]" * (MAX_TYPE_DEPTH + 1) + " -> b"

BAD = [
    # (spec, message substring, position)
    ("", "signature is empty", 0),
    ("   \n ", "signature is empty", 0),
    ("a, b", "missing '->'", 4),
    ("a: int", "missing '->'", 6),
    ("a -> b -> c", "more than one '->'", 7),
    (" -> a", "no input fields before '->'", 1),
    ("a -> ", "no output fields after '->'", 5),
    ("a ->", "no output fields after '->'", 4),
    ("1abc -> x", "invalid field name '1abc'", 0),
    ("q, a-b -> c", "invalid field name 'a-b'", 3),
    ("q -> a.b", "invalid field name 'a.b'", 5),
    ("class -> x", "field name 'class' is a Python keyword", 0),
    ("q -> None", "field name 'None' is a Python keyword", 5),
    ("_x -> y", "field name '_x' must not start with '_'", 0),
    ("q -> __doc__", "must not start with '_'", 5),
    ("fields -> y", "field name 'fields' is reserved", 0),
    ("q -> model_dump", "field name 'model_dump' is reserved", 5),
    ("q -> model_validate_x", "field name 'model_validate_x' is reserved", 5),
    ("q, instructions -> y", "field name 'instructions' is reserved", 3),
    ("lm -> y", "field name 'lm' is reserved: dspy.Predict", 0),
    ("q -> demos", "field name 'demos' is reserved", 5),
    ("q: strng -> a", "unknown type 'strng' for field 'q'", 3),
    ("question -> answer: strng", "unknown type 'strng' for field 'answer'", 20),
    ("q: list[Any] -> a", "unknown type 'Any' for field 'q'", 8),
    ("q: typing.List[str] -> a", "unknown type 'typing.List' for field 'q'", 3),
    ("q: int) -> a", "unknown type 'int)' for field 'q'", 3),
    ("a, a -> b", "duplicate input field 'a'", 3),
    ("q -> a: int, b, a: str", "duplicate output field 'a'", 16),
    ("a -> a", "field 'a' is both an input and an output", 5),
    ("a, b: int -> c, b", "field 'b' is both an input and an output", 16),
    ("a: list[str -> b", "unclosed '[' for field 'a'", 7),
    ("q -> a: dict[str, list[int]", "unclosed '[' for field 'a'", 12),
    ("a: str] -> b", "unmatched ']' for field 'a'", 6),
    ("q -> a: list[str]]", "unmatched ']' for field 'a'", 17),
    ("a: list[str int] -> b", "expected ',' or ']', found 'int' for field 'a'", 12),
    ("a: dict[str] -> b", "dict takes 2 type arguments, got 1 for field 'a'", 3),
    ("a: dict[str, int, int] -> b", "dict takes 2 type arguments, got 3", 3),
    ("a: List[int, str] -> b", "List takes 1 type argument, got 2", 3),
    ("a: Optional[int, str] -> b", "Optional takes 1 type argument, got 2 for field 'a'", 3),
    ("a: list[] -> b", "list[] needs type arguments for field 'a'", 3),
    ("a: Union[] -> b", "Union[] needs type arguments", 3),
    ("a: Optional -> b", "Optional needs type arguments", 3),
    ("a: str[int] -> b", "str takes no type arguments", 3),
    ("a: Literal[] -> b", "Literal[] needs options for field 'a'", 3),
    ("a: Literal -> b", "Literal needs options", 3),
    ("a: Literal[str] -> b", "Literal options must be quoted strings, integers, True or False; found 'str'", 11),
    ("a: Literal[1.5] -> b", "found '1.5'", 11),
    ("a: Literal[007] -> b", "found '007'", 11),
    ("a: Literal[" + "9" * 19 + "] -> b", "is too long", 11),
    ('a: Literal["x] -> b', "unterminated string", 11),
    ('a: Literal["x\\q"] -> b', "unsupported escape '\\q'", 13),
    ('a: "str" -> b', "expected a type, found string \"str\" for field 'a'", 3),
    ("a: None -> b", "None is only allowed in a union", 3),
    ("a: list[None] -> b", "None is only allowed in a union", 8),
    ("a: None | None -> b", "a union needs a type besides None", 3),
    ("a: Optional[None] -> b", "a union needs a type besides None", 3),
    ("a: list[...] -> b", "'...' is only allowed as tuple[T, ...]", 8),
    ("a: tuple[..., int] -> b", "'...' is only allowed as tuple[T, ...]", 9),
    ("a: tuple[int, str, ...] -> b", "'...' is only allowed as tuple[T, ...]", 19),
    ("a: ... -> b", "'...' is only allowed as tuple[T, ...]", 3),
    ("a, -> b", "trailing ',' after field 'a'", 1),
    ("a -> b,", "trailing ',' after field 'b'", 6),
    ("a -> b c", "unexpected 'c' after field 'b'", 7),
    ("a b -> c", "unexpected 'b' after field 'a'", 2),
    ("a: int: str -> c", "unexpected ':' after field 'a'", 6),
    ("a: list[str,] -> b", "trailing ',' in list[...]", 11),
    (", a -> b", "expected a field name, found ','", 0),
    (": int -> b", "expected a field name, found ':'", 0),
    ("a: -> b", "missing type before '->' for field 'a'", 3),
    ("a:, b -> c", "missing type before ','", 2),
    ("q -> a:", "missing type before end of input for field 'a'", 7),
    ("a: int | -> b", "missing type before '->'", 9),
    ("a: [int] -> b", "expected a type, found '['", 3),
    (DEEP, f"nested too deeply (limit {MAX_TYPE_DEPTH}) for field 'a'", 3 + 5 * MAX_TYPE_DEPTH + 4),
    ("a" * (MAX_SPEC_LENGTH + 1), "signature is too long", MAX_SPEC_LENGTH),
]


@pytest.mark.parametrize(("spec", "message", "position"), BAD)
def test_bad_specs(spec: str, message: str, position: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_signature(spec)
    assert message in caught.value.message
    assert caught.value.extra == {"position": position}


@pytest.mark.parametrize("spec", [None, 42, b"a -> b", ["a -> b"]])
def test_non_string_spec(spec: object) -> None:
    with pytest.raises(InvalidInput, match="must be a string") as caught:
        parse_signature(spec)  # type: ignore[arg-type]
    assert caught.value.extra == {"position": 0}


def test_long_words_are_clipped_in_messages() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_signature("q: " + "x" * 5000 + " -> a")
    assert len(caught.value.message) < 200


# --------------------------------------------------------------------------- parse_type and stored rows


@pytest.mark.parametrize(
    ("text", "rendered"),
    [("str", "str"), (" list[ int ] ", "list[int]"), ("int|None", "Optional[int]"), ("Literal['a']", 'Literal["a"]')],
)
def test_parse_type(text: str, rendered: str) -> None:
    assert parse_type(text).render() == rendered


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("", "type is empty", 0),
        ("strng", "unknown type 'strng'", 0),
        ("int str", "unexpected 'str' after type", 4),
        ("list[int", "unclosed '['", 4),
        ("int -> str", "unexpected '->' after type", 4),
        ("None", "None is only", 0),
    ],
)
def test_parse_type_errors(text: str, message: str, position: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_type(text)
    assert message in caught.value.message
    assert "for field" not in caught.value.message
    assert caught.value.extra == {"position": position}


def test_signature_from_fields_round_trip() -> None:
    parsed = parse_signature("q: list[str], c -> a: Optional[int]", "Do it.", {"q": "the question"})
    rows_in = [f.as_dict() for f in parsed.inputs]
    rows_out = [f.as_dict() for f in parsed.outputs]
    assert signature_from_fields(rows_in, rows_out, "Do it.") == parsed


@pytest.mark.parametrize(
    ("inputs", "outputs", "message", "field"),
    [
        ([{"name": "q", "type": "strng"}], [{"name": "a"}], "unknown type 'strng' for field 'q'", "q"),
        ([{"name": "q"}, {"name": "q"}], [{"name": "a"}], "duplicate input field 'q'", "q"),
        ([{"name": "q"}], [{"name": "q"}], "both an input and an output", "q"),
        ([{"name": "1q"}], [{"name": "a"}], "invalid field name", "1q"),
        ([{"name": "fields"}], [{"name": "a"}], "reserved", "fields"),
        ([], [{"name": "a"}], "no input fields", None),
        ([{"name": "q"}], [], "no output fields", None),
        ([{"type": "str"}], [{"name": "a"}], "has no name", None),
        (["q"], [{"name": "a"}], "must be a mapping", None),
    ],
)
def test_signature_from_fields_errors(inputs: list, outputs: list, message: str, field: str | None) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        signature_from_fields(inputs, outputs)
    assert caught.value.extra["field"] == field


# --------------------------------------------------------------------------- complexity


@pytest.mark.parametrize(
    ("type_text", "cost"),
    [
        ("str", 1),
        ("list", 1),
        ("list[str]", 2),
        ("dict[str, list[int]]", 4),
        ('Literal["a", "b", "c"]', 1),
        ("Optional[int]", 2),
        ("tuple[int, ...]", 2),
        ("int | str | None", 4),
        ("list[Optional[Literal[1]]]", 3),
    ],
)
def test_type_cost(type_text: str, cost: int) -> None:
    assert type_cost(parse_type(type_text)) == cost


def test_signature_complexity_accepts_parsed_and_rows() -> None:
    parsed = parse_signature("question: str, context: list[str] -> answer: str, confidence: float")
    rows = [f.as_dict() for f in parsed.inputs + parsed.outputs]
    assert signature_complexity(parsed) == 5
    assert signature_complexity(rows) == 5
    assert signature_complexity(parsed.inputs + parsed.outputs) == 5
    assert signature_complexity(([f.as_dict() for f in parsed.inputs], [f.as_dict() for f in parsed.outputs])) == 5
    assert signature_complexity(parse_signature("q -> a: dict[str, list[int]]")) == 5
    with pytest.raises(InvalidInput, match="unknown type"):
        signature_complexity([{"name": "a", "type": "strng"}])


# --------------------------------------------------------------------------- strategies

SCALARS = ["str", "int", "float", "bool"]
ALIASES = {"list": "List", "dict": "Dict", "tuple": "Tuple"}
# Field names that look risky but DSPy accepts without warnings.
TRICKY_NAMES = [
    "str",
    "int",
    "list",
    "type",
    "match",
    "case",
    "self",
    "cls",
    "model_name",
    "items",
    "keys",
    "json_data",
    "Optional",
    "Literal",
    "None_",
    "True_",
    "fields_x",
    "answer2",
    "ñame",
]


def bracket_depth(t: TypeExpr) -> int:
    inner = [bracket_depth(a) for a in t.args if isinstance(a, TypeExpr)]
    return (1 if t.args else 0) + max(inner, default=0)


def literal_values(negative_ints: bool) -> st.SearchStrategy[str | int | bool]:
    return st.one_of(
        st.text(
            alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from("\"'\\\n\t"),
            max_size=8,
        ),
        st.integers(min_value=-(10**6) if negative_ints else 0, max_value=10**6),
        st.booleans(),
    )


def dedupe_literal(values: list) -> tuple:
    return tuple({(type(v), v): v for v in values}.values())


def leaf_types(negative_ints: bool) -> st.SearchStrategy[TypeExpr]:
    return st.one_of(
        st.sampled_from([TypeExpr(s) for s in SCALARS] + [TypeExpr(g) for g in ALIASES]),
        st.lists(literal_values(negative_ints), min_size=1, max_size=4).map(
            lambda vs: TypeExpr("Literal", dedupe_literal(vs))
        ),
    )


def _is_union_like(t: TypeExpr) -> bool:
    return t.name in ("Optional", "Union")


def _optional(t: TypeExpr) -> TypeExpr:
    return t if t.name == "Optional" else TypeExpr("Optional", (t,))


def _union_of(members: list[TypeExpr]) -> TypeExpr:
    # Canonical unions hold distinct non-union members; wrap the others instead of filtering
    # them out, because filters inside st.recursive make hypothesis give up a lot.
    unique = list(dict.fromkeys(TypeExpr("list", (m,)) if _is_union_like(m) else m for m in members))
    return unique[0] if len(unique) == 1 else TypeExpr("Union", tuple(unique))


def _extend(children: st.SearchStrategy[TypeExpr]) -> st.SearchStrategy[TypeExpr]:
    return st.one_of(
        children.map(lambda t: TypeExpr("list", (t,))),
        st.tuples(children, children).map(lambda kv: TypeExpr("dict", kv)),
        children.map(lambda t: TypeExpr("tuple", (t, ...))),
        st.lists(children, min_size=1, max_size=3).map(lambda ts: TypeExpr("tuple", tuple(ts))),
        children.map(_optional),
        st.lists(children, min_size=2, max_size=3).map(_union_of),
    )


def make_type_exprs(negative_ints: bool = True) -> st.SearchStrategy[TypeExpr]:
    """Canonical (already normalised) type trees, within the parser's depth limit."""
    trees = st.recursive(leaf_types(negative_ints), _extend, max_leaves=6)
    return trees.filter(lambda t: bracket_depth(t) <= MAX_TYPE_DEPTH)


type_exprs = make_type_exprs()
_TYPE_EXPRS = {True: type_exprs, False: make_type_exprs(negative_ints=False)}

field_names = st.one_of(
    st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,12}", fullmatch=True),
    st.sampled_from(TRICKY_NAMES),
).filter(lambda n: field_name_problem(n) is None)

SPACES = st.sampled_from(["", "", " ", "  ", "\t", "\n", " \r\n "])


def render_string(draw: st.DrawFn, value: str) -> str:
    quote = draw(st.sampled_from(['"', "'"]))
    escapes = {"\\": "\\\\", quote: "\\" + quote, "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    return quote + "".join(escapes.get(c, c) for c in value) + quote


def surface(draw: st.DrawFn, t: TypeExpr) -> str:
    """A random non-canonical spelling of `t` that must parse back to `t`."""

    def ws() -> str:
        return draw(SPACES)

    def bracket(name: str, parts: list[str]) -> str:
        return f"{name}{ws()}[{ws()}" + f"{ws()},{ws()}".join(parts) + f"{ws()}]"

    if t.name in SCALARS:
        return t.name
    if t.name in ALIASES:
        name = draw(st.sampled_from([t.name, ALIASES[t.name]]))
        return bracket(name, [surface(draw, a) if a is not ... else "..." for a in t.args]) if t.args else name
    if t.name == "Literal":
        return bracket("Literal", [render_string(draw, v) if isinstance(v, str) else repr(v) for v in t.args])
    members = list(t.args)
    if t.name == "Optional":
        inner = members[0]
        members = [*inner.args, None] if inner.name == "Union" else [inner, None]
    return surface_union(draw, members, ws, bracket)


def surface_union(draw: st.DrawFn, members: list, ws, bracket) -> str:
    """Spell a union; `None` (in `members` for Optional) may sit anywhere, the rest keep their order."""
    if draw(st.booleans()):  # repeated members must collapse
        members = [*members, draw(st.sampled_from(members))]
    if None in members:
        members = [m for m in members if m is not None]
        members.insert(draw(st.integers(min_value=0, max_value=len(members))), None)
    parts = ["None" if m is None else surface(draw, m) for m in members]
    style = draw(st.sampled_from(["pipe", "union", "optional"]))
    if style == "optional" and None in members:
        non_none = [p for m, p in zip(members, parts, strict=True) if m is not None]
        return bracket("Optional", [f"{ws()}|{ws()}".join(non_none)])
    if style == "union":
        return bracket("Union", parts)
    return f"{ws()}|{ws()}".join(parts)


@dataclass(frozen=True)
class SpecCase:
    text: str
    expected: ParsedSignature


@st.composite
def valid_specs(draw: st.DrawFn, negative_ints: bool = True) -> SpecCase:
    """A random surface spelling of a random spec, with the ParsedSignature it must parse to."""
    names = draw(st.lists(field_names, min_size=2, max_size=5, unique=True))
    split = draw(st.integers(min_value=1, max_value=len(names) - 1))
    fields = [Field(n, draw(_TYPE_EXPRS[negative_ints])) for n in names]
    texts = [render_field(draw, f) for f in fields]
    text = draw(SPACES) + ",".join(texts[:split]) + "->" + ",".join(texts[split:]) + draw(SPACES)
    return SpecCase(text, ParsedSignature(tuple(fields[:split]), tuple(fields[split:]), ""))


def render_field(draw: st.DrawFn, field: Field) -> str:
    ws = SPACES
    if field.type == TypeExpr("str") and draw(st.booleans()):
        return f"{draw(ws)}{field.name}{draw(ws)}"
    return f"{draw(ws)}{field.name}{draw(ws)}:{draw(ws)}{surface(draw, field.type)}{draw(ws)}"


# --------------------------------------------------------------------------- properties


def assert_clean_failure(spec: object, call) -> None:
    try:
        call(spec)
    except InvalidInput as exc:
        position = exc.extra["position"]
        assert isinstance(position, int)
        assert 0 <= position <= (len(spec) if isinstance(spec, str) else 0)


SPEC_TOKENS = [
    *"ab_1 :,->[]|\"'\\.",
    "->",
    "list",
    "dict",
    "tuple",
    "Optional",
    "Union",
    "Literal",
    "None",
    "True",
    "str",
    "int",
    "...",
]
SPEC_ALPHABET = st.sampled_from(SPEC_TOKENS)
spec_like = st.lists(SPEC_ALPHABET, max_size=40).map("".join)


@SETTINGS
@given(st.one_of(st.text(), spec_like))
def test_arbitrary_text_raises_only_invalid_input(spec: str) -> None:
    assert_clean_failure(spec, parse_signature)
    assert_clean_failure(spec, parse_type)


# Fewer examples: generating the valid spec to mutate is the slow part.
@settings(SETTINGS, max_examples=100)
@given(valid_specs(), st.data())
def test_mutated_specs_raise_only_invalid_input(case: SpecCase, data: st.DataObject) -> None:
    spec = case.text
    at = data.draw(st.integers(min_value=0, max_value=len(spec)))
    mutated = data.draw(
        st.sampled_from(
            [
                spec[:at] + spec[at + 1 :],
                spec[:at] + data.draw(SPEC_ALPHABET) + spec[at:],
                spec[:at],
            ]
        )
    )
    assert_clean_failure(mutated, parse_signature)


@SETTINGS
@given(valid_specs())
def test_valid_specs_parse_to_canonical_fields(case: SpecCase) -> None:
    parsed = parse_signature(case.text)
    assert parsed == case.expected, case.text
    assert parse_signature(parsed.render()) == parsed
    for field in parsed.inputs + parsed.outputs:
        assert parse_type(field.type.render()) == field.type


@SETTINGS
@given(type_exprs)
def test_literal_one_and_true_stay_distinct(t: TypeExpr) -> None:
    # Python says 1 == True; the parser and TypeExpr equality must not.
    assert (TypeExpr("Literal", (1,)) == TypeExpr("Literal", (True,))) is False
    assert parse_type(t.render()) == t
    assert hash(parse_type(t.render())) == hash(t)


def test_field_name_problem_agrees_with_python() -> None:
    for name in keyword.kwlist:
        assert field_name_problem(name) is not None
