"""The signature language: `question: str, context: list[str] -> answer: str`.

A hand-written tokenizer and recursive-descent parser, deliberately free of
`eval`/`ast`: specs come from users, and DSPy's own string parser resolves
names by importing modules and walking caller frames. Every problem is reported
as `InvalidInput` with `extra["position"]`, a 0-based offset into the spec, so
editors can underline it.

Grammar (whitespace is free between tokens):

    spec    := fields '->' fields
    fields  := field (',' field)*
    field   := NAME [':' type]                  untyped fields are `str`
    type    := primary ('|' primary)*
    primary := 'None'                           only as a union member
             | SCALAR                           str int float bool
             | GENERIC ['[' type (',' type)* ']']    list dict tuple (+ List Dict Tuple)
             | 'Optional' '[' type ']'
             | 'Union' '[' type (',' type)* ']'
             | 'Literal' '[' option (',' option)* ']'
    option  := STRING | INT | 'True' | 'False'

Types are normalised so that equal trees mean equal `typing` objects: typing
aliases become builtins, unions are flattened and de-duplicated, and a union
with `None` becomes `Optional[...]` (`int | None` -> `Optional[int]`).
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import EllipsisType
from typing import Any, TypeVar

from cognitive.errors import InvalidInput

MAX_SPEC_LENGTH = 10_000
# Bounds recursion: the parser recurses once per '[', so this keeps the stack shallow.
MAX_TYPE_DEPTH = 8
# Longer integers make `int()` slow or refuse (CPython's int max str digits).
MAX_INT_DIGITS = 18

T = TypeVar("T")
LiteralValue = str | int | bool

SCALARS = frozenset({"str", "int", "float", "bool"})
GENERICS = {"list": 1, "dict": 2, "tuple": None}  # None: any number of arguments
TYPE_ALIASES = {"List": "list", "Dict": "dict", "Tuple": "tuple"}
CANONICAL_NAMES = SCALARS | set(GENERICS) | {"Optional", "Union", "Literal"}

# Field names DSPy or pydantic refuse, or accept while shadowing something the
# Signature class (or its metaclass) relies on. Derived from dspy 3.4 / pydantic 2.14:
# public names of `dir(dspy.Signature)` and `dir(type(dspy.Signature))`.
# tests/cognitive/engine/test_dspy_signatures.py checks this list against the
# installed dspy, so an upgrade that adds a name fails loudly.
# fmt: off
RESERVED_BY_SIGNATURE = frozenset({
    "append", "append_instructions", "construct", "copy", "delete", "dict", "dump_state",
    "equals", "fields", "from_orm", "input_fields", "insert", "instructions", "json",
    "load_state", "model_computed_fields", "model_config", "model_construct", "model_copy",
    "model_dump", "model_dump_json", "model_extra", "model_fields", "model_fields_set",
    "model_json_schema", "model_parametrized_name", "model_post_init", "model_rebuild",
    "model_validate", "model_validate_json", "model_validate_strings", "mro", "output_fields",
    "parse_file", "parse_obj", "parse_raw", "prepend", "register", "schema", "schema_json",
    "signature", "update_forward_refs", "validate", "with_instructions", "with_updated_fields",
})
# fmt: on
# pydantic's protected namespaces: any field starting with these warns.
RESERVED_PREFIXES = ("model_dump", "model_validate")
# dspy.Predict pops these from its call kwargs, so an input field with one of
# these names would silently never reach the LM.
RESERVED_BY_PREDICT = frozenset({"signature", "demos", "config", "lm", "new_signature"})

_INT_RE = re.compile(r"-?(0|[1-9][0-9]*)")
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r"}
_RENDER_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


# --------------------------------------------------------------------------- model


@dataclass(frozen=True, eq=False)
class TypeExpr:
    """A normalised type: `name` is canonical (see CANONICAL_NAMES).

    `args` holds TypeExprs, except for `Literal` (the option values) and a
    variadic tuple, whose second argument is `...` (Ellipsis).
    """

    name: str
    args: tuple[TypeArg, ...] = ()

    def __post_init__(self) -> None:
        if self.name not in CANONICAL_NAMES:
            raise ValueError(f"not a canonical type name: {self.name!r}")

    def render(self) -> str:
        if not self.args:
            return self.name
        return f"{self.name}[{', '.join(_render_arg(a) for a in self.args)}]"

    def _key(self) -> tuple[Any, ...]:
        # `1 == True` in Python, but Literal[1] and Literal[True] are different types.
        return (self.name, tuple(_arg_key(a) for a in self.args))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TypeExpr) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"TypeExpr({self.render()!r})"


TypeArg = TypeExpr | LiteralValue | EllipsisType


def _arg_key(arg: TypeArg) -> Any:
    return arg._key() if isinstance(arg, TypeExpr) else (type(arg).__name__, arg)


def _render_arg(arg: TypeArg) -> str:
    if isinstance(arg, TypeExpr):
        return arg.render()
    if arg is Ellipsis:
        return "..."
    if isinstance(arg, str):
        return '"' + "".join(_RENDER_ESCAPES.get(c, c) for c in arg) + '"'
    return repr(arg)  # int or bool: `True`, `-3`


STR = TypeExpr("str")


@dataclass(frozen=True)
class Field:
    name: str
    type: TypeExpr
    description: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type.render(), "description": self.description}


@dataclass(frozen=True)
class ParsedSignature:
    inputs: tuple[Field, ...]
    outputs: tuple[Field, ...]
    instructions: str = ""

    def render(self) -> str:
        """Canonical spec text; `parse_signature(p.render())` has the same fields."""
        return f"{_render_fields(self.inputs)} -> {_render_fields(self.outputs)}"


def _render_fields(fields: tuple[Field, ...]) -> str:
    return ", ".join(f"{f.name}: {f.type.render()}" for f in fields)


# --------------------------------------------------------------------------- tokenizer

WORD, STRING, EOF = "word", "string", "end"  # token kinds; punctuation kinds are their own text
ARROW, COMMA, COLON, LBRACK, RBRACK, PIPE = "->", ",", ":", "[", "]", "|"
_PUNCT = {",": COMMA, ":": COLON, "[": LBRACK, "]": RBRACK, "|": PIPE}
_WORD_STOP = set(_PUNCT) | {'"', "'"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str  # source text; for STRING the decoded value
    pos: int

    def describe(self) -> str:
        if self.kind == EOF:
            return "end of input"
        if self.kind == STRING:
            return "string " + _render_arg(_clip(self.text))
        return f"'{_clip(self.text)}'"


def _clip(text: str, limit: int = 40) -> str:
    # Keeps messages readable when someone pastes a novel into one word.
    return text if len(text) <= limit else text[:limit] + "..."


def _tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif text.startswith("->", i):
            tokens.append(Token(ARROW, "->", i))
            i += 2
        elif c in _PUNCT:
            tokens.append(Token(_PUNCT[c], c, i))
            i += 1
        elif c in "\"'":
            token, i = _read_string(text, i)
            tokens.append(token)
        else:
            start = i
            while i < len(text) and _is_word_char(text, i):
                i += 1
            tokens.append(Token(WORD, text[start:i], start))
    tokens.append(Token(EOF, "", len(text)))
    return tokens


def _is_word_char(text: str, i: int) -> bool:
    # Words swallow stray characters ("a-b", "1abc", "int)") so the error can
    # quote the whole bad name instead of one confusing character.
    c = text[i]
    return not (c.isspace() or c in _WORD_STOP or text.startswith("->", i))


def _read_string(text: str, start: int) -> tuple[Token, int]:
    quote = text[start]
    chars: list[str] = []
    i = start + 1
    while i < len(text) and text[i] != quote:
        if text[i] == "\\":
            escaped = text[i + 1 : i + 2]
            if escaped not in _ESCAPES:
                raise _error(f"unsupported escape '\\{escaped}' in string", i)
            chars.append(_ESCAPES[escaped])
            i += 2
        else:
            chars.append(text[i])
            i += 1
    if i >= len(text):
        raise _error("unterminated string", start)
    return Token(STRING, "".join(chars), start), i + 1


def _error(message: str, position: int) -> InvalidInput:
    return InvalidInput(message, {"position": position})


# --------------------------------------------------------------------------- parser

# A union member before normalisation: a type, or None for the `None` keyword.
_Member = TypeExpr | None


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.index = 0
        self.field = ""  # the field whose type is being parsed, for messages
        self.depth = 0

    # -- token helpers

    @property
    def tok(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def fail(self, message: str, position: int | None = None) -> InvalidInput:
        suffix = f" for field '{self.field}'" if self.field else ""
        return _error(message + suffix, self.tok.pos if position is None else position)

    # -- signatures

    def signature(self) -> tuple[list[tuple[str, TypeExpr, int]], list[tuple[str, TypeExpr, int]]]:
        self.check_arrows()
        inputs = self.fields("input")
        self.advance()  # the '->' (check_arrows guarantees it is next)
        outputs = self.fields("output")
        taken = {name for name, _, _ in inputs}
        for name, _, pos in outputs:
            if name in taken:
                raise _error(f"field '{name}' is both an input and an output", pos)
        return inputs, outputs

    def check_arrows(self) -> None:
        arrows = [t for t in self.tokens if t.kind == ARROW]
        if not arrows:
            raise _error("missing '->' between inputs and outputs", self.tokens[-1].pos)
        if len(arrows) > 1:
            raise _error("more than one '->' in signature", arrows[1].pos)

    def fields(self, side: str) -> list[tuple[str, TypeExpr, int]]:
        end = ARROW if side == "input" else EOF
        if self.tok.kind == end:
            where = "before '->'" if side == "input" else "after '->'"
            raise _error(f"no {side} fields {where}", self.tok.pos)
        fields: list[tuple[str, TypeExpr, int]] = []
        seen: set[str] = set()
        while True:
            name, type_, pos = self.field_decl()
            if name in seen:
                raise _error(f"duplicate {side} field '{name}'", pos)
            seen.add(name)
            fields.append((name, type_, pos))
            if self.tok.kind == end:
                return fields
            self.expect_field_separator(name, end)

    def expect_field_separator(self, name: str, end: str) -> None:
        token = self.tok
        if token.kind == COMMA:
            self.advance()
            if self.tok.kind in (end, ARROW, EOF):
                raise _error(f"trailing ',' after field '{name}'", token.pos)
            return
        if token.kind == RBRACK:
            raise _error(f"unmatched ']' for field '{name}'", token.pos)
        raise _error(f"unexpected {token.describe()} after field '{name}'", token.pos)

    def field_decl(self) -> tuple[str, TypeExpr, int]:
        token = self.advance()
        if token.kind != WORD:
            raise _error(f"expected a field name, found {token.describe()}", token.pos)
        problem = field_name_problem(token.text)
        if problem:
            raise _error(problem, token.pos)
        if self.tok.kind != COLON:
            return token.text, STR, token.pos
        self.advance()
        self.field = token.text
        type_ = self.type_expr()
        self.field = ""
        return token.text, type_, token.pos

    # -- types

    def type_expr(self) -> TypeExpr:
        start = self.tok.pos
        members = self.union_members()
        if len(members) == 1:
            if members[0] is None:
                raise self.fail("None is only allowed in a union such as 'int | None'", start)
            return members[0]
        return self.make_union(members, start)

    def union_members(self) -> list[_Member]:
        members = [self.primary()]
        while self.tok.kind == PIPE:
            self.advance()
            members.append(self.primary())
        return members

    def primary(self) -> _Member:
        token = self.tok
        if token.kind != WORD:
            if token.kind in (ARROW, EOF, COMMA, RBRACK, PIPE):
                raise self.fail(f"missing type before {token.describe()}")
            raise self.fail(f"expected a type, found {token.describe()}")
        self.advance()
        name = TYPE_ALIASES.get(token.text, token.text)
        if name == "None":
            return None
        if name in SCALARS:
            return self.scalar(name, token)
        if name in GENERICS:
            return self.generic(name, token)
        if name in ("Optional", "Union"):
            return self.union_form(name, token)
        if name == "Literal":
            return self.literal(token)
        if name == "...":
            raise self.fail("'...' is only allowed as tuple[T, ...]", token.pos)
        raise self.fail(f"unknown type {token.describe()}", token.pos)

    def scalar(self, name: str, token: Token) -> TypeExpr:
        if self.tok.kind == LBRACK:
            raise self.fail(f"{token.text} takes no type arguments", token.pos)
        return TypeExpr(name)

    def generic(self, name: str, token: Token) -> TypeExpr:
        if self.tok.kind != LBRACK:
            return TypeExpr(name)  # bare `list`, as DSPy allows
        located = self.bracketed(token, self.generic_arg)
        args = [arg for _, arg in located]
        arity = GENERICS[name]
        if arity is not None and len(args) != arity:
            plural = "s" if arity > 1 else ""
            raise self.fail(f"{token.text} takes {arity} type argument{plural}, got {len(args)}", token.pos)
        variadic_tuple = name == "tuple" and len(args) == 2 and args[0] is not Ellipsis
        for pos, arg in located:
            if arg is Ellipsis and not (variadic_tuple and pos == located[1][0]):
                raise self.fail("'...' is only allowed as tuple[T, ...]", pos)
        return TypeExpr(name, tuple(args))

    def generic_arg(self) -> TypeArg:
        if self.tok.kind == WORD and self.tok.text == "...":
            self.advance()
            return Ellipsis
        return self.type_expr()

    def union_form(self, name: str, token: Token) -> TypeExpr:
        if self.tok.kind != LBRACK:
            raise self.fail(f"{name} needs type arguments, e.g. {name}[int]", token.pos)
        groups = [group for _, group in self.bracketed(token, self.union_members)]
        if name == "Optional" and len(groups) != 1:
            raise self.fail(f"Optional takes 1 type argument, got {len(groups)}", token.pos)
        members = [m for group in groups for m in group]
        if name == "Optional":
            members.append(None)
        return self.make_union(members, token.pos)

    def make_union(self, members: list[_Member], pos: int) -> TypeExpr:
        flat = [m for member in members for m in _flatten_union(member)]
        has_none = None in flat
        # Dict keys keep first-seen order and drop duplicates, as typing.Union does.
        unique = list(dict.fromkeys(m for m in flat if m is not None))
        if not unique:
            raise self.fail("a union needs a type besides None", pos)
        core = unique[0] if len(unique) == 1 else TypeExpr("Union", tuple(unique))
        return TypeExpr("Optional", (core,)) if has_none else core

    def literal(self, token: Token) -> TypeExpr:
        if self.tok.kind != LBRACK:
            raise self.fail('Literal needs options, e.g. Literal["a", "b"]', token.pos)
        options = [option for _, option in self.bracketed(token, self.literal_option)]
        # Keyed by type too: Literal[1, True] has two options.
        unique = {(type(v), v): v for v in options}
        return TypeExpr("Literal", tuple(unique.values()))

    def literal_option(self) -> LiteralValue:
        token = self.advance()
        if token.kind == STRING:
            return token.text
        if token.kind == WORD and token.text in ("True", "False"):
            return token.text == "True"
        if token.kind == WORD and _INT_RE.fullmatch(token.text):
            if len(token.text.lstrip("-")) > MAX_INT_DIGITS:
                raise self.fail(f"integer {token.describe()} is too long", token.pos)
            return int(token.text)
        raise self.fail(
            f"Literal options must be quoted strings, integers, True or False; found {token.describe()}",
            token.pos,
        )

    def bracketed(self, owner: Token, item: Callable[[], T]) -> list[tuple[int, T]]:
        """Parse `[item, item, ...]` after `owner` (the generic's name token).

        Returns (position, item) pairs so callers can point at a bad argument.
        """
        open_ = self.advance()
        self.depth += 1
        if self.depth > MAX_TYPE_DEPTH:
            raise self.fail(f"type is nested too deeply (limit {MAX_TYPE_DEPTH})", open_.pos)
        if self.tok.kind == RBRACK:
            what = "options" if owner.text == "Literal" else "type arguments"
            raise self.fail(f"{owner.text}[] needs {what}", owner.pos)
        items = [(self.tok.pos, item())]
        while self.tok.kind == COMMA:
            comma = self.advance()
            if self.tok.kind == RBRACK:
                raise self.fail(f"trailing ',' in {owner.text}[...]", comma.pos)
            items.append((self.tok.pos, item()))
        self.close_bracket(open_)
        self.depth -= 1
        return items

    def close_bracket(self, open_: Token) -> None:
        token = self.tok
        if token.kind == RBRACK:
            self.advance()
        elif token.kind in (ARROW, EOF):
            raise self.fail("unclosed '['", open_.pos)
        else:
            raise self.fail(f"expected ',' or ']', found {token.describe()}")


def _flatten_union(member: _Member) -> list[_Member]:
    if member is None or member.name not in ("Optional", "Union"):
        return [member]
    flat: list[_Member] = [m for m in member.args if isinstance(m, TypeExpr)]
    return [*flat, None] if member.name == "Optional" else flat


def field_name_problem(name: str) -> str | None:
    """Why `name` cannot be a field name, or None if it can."""
    if not name.isidentifier():
        return f"invalid field name '{_clip(name)}': use letters, digits and '_'"
    if keyword.iskeyword(name):
        return f"field name '{name}' is a Python keyword"
    if name.startswith("_"):
        return f"field name '{name}' must not start with '_' (reserved by pydantic)"
    if name in RESERVED_BY_PREDICT:
        return f"field name '{name}' is reserved: dspy.Predict takes it as an argument"
    if name in RESERVED_BY_SIGNATURE or name.startswith(RESERVED_PREFIXES):
        return f"field name '{name}' is reserved by dspy.Signature/pydantic"
    return None


def _check_text(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise _error(f"{what} must be a string, not {type(text).__name__}", 0)
    if len(text) > MAX_SPEC_LENGTH:
        raise _error(f"{what} is too long ({len(text)} characters, limit {MAX_SPEC_LENGTH})", MAX_SPEC_LENGTH)
    if not text.strip():
        raise _error(f"{what} is empty", 0)
    return text


# --------------------------------------------------------------------------- public API


def parse_signature(spec: str, instructions: str = "", descriptions: dict[str, str] | None = None) -> ParsedSignature:
    """Parse `spec`; raises InvalidInput with `extra["position"]` on any problem."""
    _check_text(spec, "signature")
    if not isinstance(instructions, str):
        raise InvalidInput("instructions must be a string", {"path": "instructions"})
    inputs, outputs = _Parser(spec).signature()
    descriptions = _check_descriptions(descriptions, [name for name, _, _ in inputs + outputs])
    return ParsedSignature(
        inputs=tuple(Field(n, t, descriptions.get(n, "")) for n, t, _ in inputs),
        outputs=tuple(Field(n, t, descriptions.get(n, "")) for n, t, _ in outputs),
        instructions=instructions,
    )


def _check_descriptions(descriptions: Mapping[str, str] | None, names: list[str]) -> Mapping[str, str]:
    if descriptions is None:
        return {}
    if not isinstance(descriptions, Mapping):
        raise InvalidInput("descriptions must map field names to text", {"path": "descriptions"})
    for name, text in descriptions.items():
        where = {"path": f"descriptions.{name}", "field": name}
        if name not in names:
            raise InvalidInput(f"description given for unknown field '{name}'", where)
        if not isinstance(text, str):
            raise InvalidInput(f"description of field '{name}' must be a string", where)
    return descriptions


def parse_type(text: str) -> TypeExpr:
    """Parse one type (e.g. a stored `Field.as_dict()["type"]`); positions index `text`."""
    _check_text(text, "type")
    parser = _Parser(text)
    result = parser.type_expr()
    if parser.tok.kind != EOF:
        raise _error(f"unexpected {parser.tok.describe()} after type", parser.tok.pos)
    return result


def signature_from_fields(
    input_fields: Iterable[Mapping[str, str]],
    output_fields: Iterable[Mapping[str, str]],
    instructions: str = "",
) -> ParsedSignature:
    """Rebuild a ParsedSignature from stored `Field.as_dict()` rows, re-validating them.

    Errors carry `extra["field"]` (there is no spec text to point into). Every run rebuilds its
    modules from stored rows, so results are cached by content; ParsedSignature is immutable.
    """
    return _signature_from_json(json.dumps([list(input_fields), list(output_fields), instructions]))


@lru_cache(maxsize=1024)
def _signature_from_json(key: str) -> ParsedSignature:
    input_fields, output_fields, instructions = json.loads(key)
    inputs = tuple(_field_from_dict(row) for row in input_fields)
    outputs = tuple(_field_from_dict(row) for row in output_fields)
    for side, fields in (("input", inputs), ("output", outputs)):
        if not fields:
            raise InvalidInput(f"no {side} fields", {"field": None})
        names = [f.name for f in fields]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise InvalidInput(f"duplicate {side} field '{name}'", {"field": name})
    for name in {f.name for f in inputs} & {f.name for f in outputs}:
        raise InvalidInput(f"field '{name}' is both an input and an output", {"field": name})
    if not isinstance(instructions, str):
        raise InvalidInput("instructions must be a string", {"path": "instructions"})
    return ParsedSignature(inputs, outputs, instructions)


def _field_from_dict(row: Mapping[str, str]) -> Field:
    if not isinstance(row, Mapping):
        raise InvalidInput("stored field must be a mapping", {"field": None})
    name = row.get("name")
    if not isinstance(name, str):
        raise InvalidInput("stored field has no name", {"field": None})
    problem = field_name_problem(name)
    if problem:
        raise InvalidInput(problem, {"field": name})
    description = row.get("description") or ""
    if not isinstance(description, str):
        raise InvalidInput(f"description of field '{name}' must be a string", {"field": name})
    return Field(name, _stored_type(row, name), description)


def _stored_type(row: Mapping[str, str], name: str) -> TypeExpr:
    try:
        return parse_type(row.get("type") or "str")
    except InvalidInput as exc:
        raise InvalidInput(f"{exc.message} for field '{name}'", {**exc.extra, "field": name}) from exc


def type_cost(type_: TypeExpr) -> int:
    """Number of type nodes: `str`=1, `list[str]`=2, `dict[str, list[int]]`=4.

    Literal options and the `...` of `tuple[T, ...]` are values, not types, so
    they are free: `Literal["a", "b", "c"]`=1, `Optional[int]`=2.
    """
    return 1 + sum(type_cost(a) for a in type_.args if isinstance(a, TypeExpr))


def signature_complexity(
    parsed_or_field_dicts: ParsedSignature | Iterable[Field | Mapping[str, str]],
) -> int:
    """Sum over fields of `type_cost(field.type)`, i.e. 1 per field plus 1 per nested type.

    `q -> a` costs 2; `question: str, context: list[str] -> answer: str` costs 4.
    Accepts a ParsedSignature, Fields, or stored rows: `input_fields + output_fields`
    (or the pair `(input_fields, output_fields)`).
    """
    if isinstance(parsed_or_field_dicts, ParsedSignature):
        items: Iterable[Field | Mapping[str, str]] = parsed_or_field_dicts.inputs + parsed_or_field_dicts.outputs
    else:
        items = parsed_or_field_dicts
    total = 0
    for item in items:
        if isinstance(item, list | tuple):  # (input_fields, output_fields) passed as a pair
            total += signature_complexity(item)
        elif isinstance(item, Field):
            total += type_cost(item.type)
        elif isinstance(item, Mapping):
            total += type_cost(_stored_type(item, str(item.get("name", "?"))))
        else:
            raise InvalidInput("expected fields or stored field rows", {"field": None})
    return total
