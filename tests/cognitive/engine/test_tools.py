from __future__ import annotations

import re

import pytest

from cognitive.engine.tools import TOOLS, calculator, utc_today, word_count


@pytest.mark.parametrize(
    ("expression", "result"),
    [("1 + 2 * 3", "7"), ("(12 + 7) * 3", "57"), ("2 ** 10", "1024"), ("-3 - -2", "-1"), ("7 / 2", "3.5"),
     ("10 % 3", "1"), ("1.5 * 2", "3"), ("2 ** -1", "0.5"), ("((4))", "4")],
)
def test_calculator_evaluates_arithmetic(expression, result):
    assert calculator(expression) == result


@pytest.mark.parametrize(
    ("expression", "words"),
    [("1 / 0", "division by zero"), ("2 ** 2 ** 10", "exponent"), ("9" * 20, "out of range"),
     ("__import__('os')", "unexpected character"), ("1 +", "ends too early"), ("(1", "ends too early"),
     ("1 2", "unexpected"), ("", "non-empty"), ("1+" * 200, "longer than"), ("-" * 60 + "1", "nested too deeply"),
     ("10 ** 10 * 10 ** 10", "out of range")],
)
def test_calculator_refuses_what_it_cannot_or_should_not_compute(expression, words):
    with pytest.raises(ValueError, match=words):
        calculator(expression)


def test_other_tools():
    assert word_count("it's a fine day, isn't it?") == 6
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", utc_today())
    assert sorted(TOOLS) == ["calculator", "utc_today", "word_count"]
