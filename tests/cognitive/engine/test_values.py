from __future__ import annotations

import pytest

from cognitive.engine.values import ValueMismatch, check_record, check_value, type_fits
from cognitive.errors import InvalidInput
from cognitive.signatures import Field, parse_type


def t(text: str):
    return parse_type(text)


@pytest.mark.parametrize(
    ("type_", "value", "expected"),
    [
        ("str", "x", "x"),
        ("int", 3, 3),
        ("float", 3, 3.0),
        ("bool", True, True),
        ("list[int]", [1, 2], [1, 2]),
        ("list", ["a", 1], ["a", 1]),
        ("dict[str, list[int]]", {"a": [1]}, {"a": [1]}),
        ("dict[int, str]", {"1": "a"}, {"1": "a"}),
        ("tuple[int, str]", [1, "a"], [1, "a"]),
        ("tuple[int, ...]", [1, 2, 3], [1, 2, 3]),
        ("Optional[int]", None, None),
        ("int | str", "x", "x"),
        ('Literal["a", "b"]', "b", "b"),
        ("Literal[1, True]", True, True),
    ],
)
def test_strict_values_that_fit(type_, value, expected):
    assert check_value(value, t(type_)) == expected


@pytest.mark.parametrize(
    ("type_", "value", "where"),
    [
        ("str", 3, ""),
        ("int", "3", ""),
        ("int", True, ""),
        ("int", 3.5, ""),
        ("float", float("nan"), ""),
        ("bool", 1, ""),
        ("list[int]", [1, "2"], "[1]"),
        ("dict[str, int]", {"a": "x"}, ".a"),
        ("dict[int, str]", {"x": "a"}, ".x"),
        ("tuple[int, str]", [1], ""),
        ("Literal[1]", True, ""),
        ('Literal["a"]', "c", ""),
        ("str", None, ""),
    ],
)
def test_strict_values_that_do_not_fit_say_where(type_, value, where):
    with pytest.raises(ValueMismatch) as error:
        check_value(value, t(type_))
    assert error.value.where == where


@pytest.mark.parametrize(
    ("type_", "value", "expected"),
    [("int", "42", 42), ("int", 3.0, 3), ("float", " 0.5 ", 0.5), ("bool", "True", True), ("str", 7, "7"),
     ('Literal["yes", "no"]', "'Yes'", "yes"), ("list[str]", {"b", "a"}, ["a", "b"]), ("int | str", "5", "5"),
     ("int | bool", "7", 7)],
)
def test_lenient_outputs_take_what_the_lm_meant(type_, value, expected):
    assert check_value(value, t(type_), lenient=True) == expected


@pytest.mark.parametrize(
    ("produced", "consumed", "fits"),
    [
        ("str", "str", True),
        ("int", "float", True),
        ("float", "int", False),
        ("int", "str", False),
        ("str", "Optional[str]", True),
        ("Optional[str]", "str", False),
        ("Optional[int]", "Optional[float]", True),
        ("list[str]", "list[str]", True),
        ("list[int]", "list[float]", True),
        ("list[str]", "list", True),
        ("list", "list[str]", True),
        ("list[str]", "str", False),
        ("tuple[str, ...]", "list[str]", True),
        ('Literal["a", "b"]', "str", True),
        ('Literal["a", "b"]', 'Literal["a", "b", "c"]', True),
        ('Literal["a", "z"]', 'Literal["a", "b"]', False),
        ("str", 'Literal["a"]', False),
        ("int | str", "str", False),
        ("int | str", "float | str", True),
        ("dict[str, int]", "dict[str, float]", True),
        ("dict[str, int]", "dict[str, str]", False),
        ("tuple[int, str]", "tuple[float, str]", True),
        ("tuple[int, str]", "tuple[int]", False),
    ],
)
def test_type_fits(produced, consumed, fits):
    assert type_fits(t(produced), t(consumed)) is fits


FIELDS = (Field("question", t("str")), Field("hint", t("Optional[str]")), Field("n", t("float")))


def test_check_record_names_the_field():
    assert check_record({"question": "q", "n": 1}, FIELDS, what="input") == {"question": "q", "hint": None, "n": 1.0}
    for values, field in [({"n": 1}, "question"), ({"question": "q", "n": "1"}, "n"),
                          ({"question": "q", "n": 1, "x": 0}, "x")]:
        with pytest.raises(InvalidInput) as error:
            check_record(values, FIELDS, what="input")
        assert error.value.extra["field"] == field
