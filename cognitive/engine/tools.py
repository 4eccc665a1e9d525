"""The tools a `react` module may call: a fixed registry of safe Python functions.

Users pick tools by name; they never supply code. Each tool takes and returns plain values,
bounds its own work, and raises ValueError on bad arguments (ReAct shows the message to the
LM as the observation, so it can correct itself).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass

MAX_EXPRESSION_LENGTH = 200
MAX_TEXT_LENGTH = 100_000
# Keeps `9 ** 9 ** 9` from eating the worker: results beyond this are refused.
MAX_MAGNITUDE = 10**15

_TOKEN_RE = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|(\*\*|[-+*/%()]))")


def calculator(expression: str) -> str:
    """Evaluate arithmetic: numbers, + - * / % ** and parentheses, e.g. '(12 + 7) * 3'."""
    if not isinstance(expression, str) or not expression.strip():
        raise ValueError("expression must be non-empty text")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ValueError(f"expression is longer than {MAX_EXPRESSION_LENGTH} characters")
    value = _Arithmetic(expression).parse()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(round(value, 10) if isinstance(value, float) else value)


class _Arithmetic:
    """Recursive descent: expr := term (('+'|'-') term)*; term := power (('*'|'/'|'%') power)*;
    power := unary ('**' power)?; unary := '-' unary | '+' unary | atom; atom := NUMBER | '(' expr ')'."""

    def __init__(self, text: str) -> None:
        self.tokens = self._tokenize(text)
        self.pos = 0

    @staticmethod
    def _tokenize(text: str) -> list[str]:
        tokens: list[str] = []
        index = 0
        stripped = text.rstrip()
        while index < len(stripped):
            match = _TOKEN_RE.match(stripped, index)
            if not match:
                raise ValueError(f"unexpected character {stripped[index]!r} at position {index}")
            tokens.append(match.group(1) or match.group(2))
            index = match.end()
        return tokens

    def parse(self) -> int | float:
        value = self._expr(depth=0)
        if self.pos != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.pos]!r}")
        return _bounded(value)

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise ValueError("expression ends too early")
        self.pos += 1
        return token

    def _expr(self, depth: int) -> int | float:
        value = self._term(depth)
        while self._peek() in ("+", "-"):
            value = _bounded(value + self._term(depth) if self._take() == "+" else value - self._term(depth))
        return value

    def _term(self, depth: int) -> int | float:
        value = self._power(depth)
        while self._peek() in ("*", "/", "%"):
            operator = self._take()
            right = self._power(depth)
            if operator != "*" and right == 0:
                raise ValueError("division by zero")
            value = _bounded(value * right if operator == "*" else value / right if operator == "/" else value % right)
        return value

    def _power(self, depth: int) -> int | float:
        base = self._unary(depth)
        if self._peek() != "**":
            return base
        self._take()
        exponent = self._power(depth)
        if abs(exponent) > 64:
            raise ValueError("exponent is too large")
        return _bounded(base**exponent)

    def _unary(self, depth: int) -> int | float:
        if depth > 50:
            raise ValueError("expression is nested too deeply")
        if self._peek() in ("-", "+"):
            sign = -1 if self._take() == "-" else 1
            return sign * self._unary(depth + 1)
        token = self._take()
        if token == "(":  # noqa: S105 - a parenthesis, not a password
            value = self._expr(depth + 1)
            if self._take() != ")":
                raise ValueError("missing ')'")
            return value
        if token[0].isdigit():
            return float(token) if "." in token else int(token)
        raise ValueError(f"unexpected {token!r}")


def _bounded(value: int | float | complex) -> int | float:
    if isinstance(value, complex) or abs(value) > MAX_MAGNITUDE:
        raise ValueError("result is out of range")
    return value


def word_count(text: str) -> int:
    """Count the words (runs of letters, digits or apostrophes) in a text."""
    if not isinstance(text, str):
        raise ValueError("text must be a string")
    return len(re.findall(r"[\w']+", text[:MAX_TEXT_LENGTH]))


def utc_today() -> str:
    """Today's date in UTC, as YYYY-MM-DD."""
    return datetime.datetime.now(datetime.UTC).date().isoformat()


@dataclass(frozen=True)
class ToolSpec:
    name: str
    function: Callable[..., object]
    description: str


TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec("calculator", calculator, "Evaluate an arithmetic expression, e.g. '(12 + 7) * 3'."),
        ToolSpec("word_count", word_count, "Count the words in a text."),
        ToolSpec("utc_today", utc_today, "Today's date in UTC (YYYY-MM-DD)."),
    )
}


def tool_names() -> list[str]:
    return sorted(TOOLS)
