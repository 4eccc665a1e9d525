"""JSON values against signature types: input checks, output coercion, and type compatibility.

Pure functions over `cognitive.signatures.TypeExpr`; no DSPy. Inputs are checked strictly
(a JSON `"3"` is not an `int`), outputs leniently (an LM's `3.0` for an `int` field is `3`),
because the caller controls the input but only DSPy's parser stands between us and the LM.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from cognitive.errors import InvalidInput
from cognitive.signatures import Field, TypeExpr

_SCALARS = {"str": str, "int": int, "float": float, "bool": bool}


class ValueMismatch(ValueError):
    """`where` is a dotted path inside the value (`[2]`, `.key`), empty at the top."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _mismatch(value: Any, type_: TypeExpr, where: str) -> ValueMismatch:
    return ValueMismatch(f"expected {type_.render()}, got {_kind(value)}", where)


def check_value(value: Any, type_: TypeExpr, *, lenient: bool = False, where: str = "") -> Any:
    """Return `value` as a JSON value of `type_`, or raise ValueMismatch.

    `lenient` accepts what an LM plausibly meant: numbers as text, integral floats as ints,
    anything as `str`.
    """
    name = type_.name
    if name in _SCALARS:
        return _check_scalar(value, name, type_, lenient, where)
    if name == "Optional":
        return None if value is None else check_value(value, type_.args[0], lenient=lenient, where=where)
    if name == "Union":
        return _check_union(value, type_, lenient, where)
    if name == "Literal":
        return _check_literal(value, type_, lenient, where)
    if name == "list":
        return _check_list(value, type_, lenient, where)
    if name == "tuple":
        return _check_tuple(value, type_, lenient, where)
    if name == "dict":
        return _check_dict(value, type_, lenient, where)
    raise _mismatch(value, type_, where)  # pragma: no cover - TypeExpr names are closed


def _check_scalar(value: Any, name: str, type_: TypeExpr, lenient: bool, where: str) -> Any:
    if name == "bool":
        if isinstance(value, bool):
            return value
        if lenient and isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise _mismatch(value, type_, where)
    if name == "str":
        if isinstance(value, str):
            return value
        if lenient and value is not None and not isinstance(value, dict | list):
            return str(value)
        raise _mismatch(value, type_, where)
    number = _as_number(value, lenient)
    if number is None:
        raise _mismatch(value, type_, where)
    if name == "float":
        return float(number)
    if isinstance(number, float):
        if not (lenient and number.is_integer()):
            raise _mismatch(value, type_, where)
        return int(number)
    return number


def _as_number(value: Any, lenient: bool) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if lenient and isinstance(value, str):
        text = value.strip()
        for cast in (int, float):
            try:
                number = cast(text)
            except ValueError:
                continue
            return number if not isinstance(number, float) or math.isfinite(number) else None
    return None


def _check_union(value: Any, type_: TypeExpr, lenient: bool, where: str) -> Any:
    # Strict first, so a lenient `str` member does not swallow a value another member takes as is.
    for attempt_lenient in (False, True) if lenient else (False,):
        for member in type_.args:
            try:
                return check_value(value, member, lenient=attempt_lenient, where=where)
            except ValueMismatch:
                continue
    raise _mismatch(value, type_, where)


def _check_literal(value: Any, type_: TypeExpr, lenient: bool, where: str) -> Any:
    for option in type_.args:
        if type(option) is type(value) and option == value:
            return option
    if lenient and isinstance(value, str):
        for option in type_.args:
            if str(option).lower() == value.strip().strip("'\"").lower():
                return option
    raise ValueMismatch(f"expected one of {type_.render()[len('Literal'):]}, got {value!r}"[:300], where)


def _check_list(value: Any, type_: TypeExpr, lenient: bool, where: str) -> list[Any]:
    if isinstance(value, set | frozenset) and lenient:
        value = sorted(value, key=repr)
    if not isinstance(value, list | tuple):
        raise _mismatch(value, type_, where)
    if not type_.args:
        return list(value)
    item = type_.args[0]
    assert isinstance(item, TypeExpr)
    return [check_value(v, item, lenient=lenient, where=f"{where}[{i}]") for i, v in enumerate(value)]


def _check_tuple(value: Any, type_: TypeExpr, lenient: bool, where: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise _mismatch(value, type_, where)
    args = type_.args
    if not args:
        return list(value)
    if len(args) == 2 and args[1] is Ellipsis:
        items: Sequence[Any] = [args[0]] * len(value)
    elif len(args) != len(value):
        raise ValueMismatch(f"expected {type_.render()} ({len(args)} items), got {len(value)} items", where)
    else:
        items = args
    pairs = enumerate(zip(value, items, strict=True))
    return [check_value(v, t, lenient=lenient, where=f"{where}[{i}]") for i, (v, t) in pairs]


def _check_dict(value: Any, type_: TypeExpr, lenient: bool, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _mismatch(value, type_, where)
    if not type_.args:
        return dict(value)
    key_type, value_type = type_.args
    assert isinstance(key_type, TypeExpr) and isinstance(value_type, TypeExpr)
    result: dict[str, Any] = {}
    for key, item in value.items():
        # JSON object keys are always text; a non-str key type is checked on the text's meaning.
        check_value(key, key_type, lenient=lenient or key_type.name != "str", where=f"{where}.{key}")
        result[str(key)] = check_value(item, value_type, lenient=lenient, where=f"{where}.{key}")
    return result


def is_optional(type_: TypeExpr) -> bool:
    return type_.name == "Optional"


# --------------------------------------------------------------------------- compatibility


def type_fits(produced: TypeExpr, consumed: TypeExpr) -> bool:
    """Whether every value of `produced` is a value of `consumed` (a binding is sound)."""
    if produced == consumed:
        return True
    if consumed.name == "Optional":
        inner = produced.args[0] if produced.name == "Optional" else produced
        assert isinstance(inner, TypeExpr) and isinstance(consumed.args[0], TypeExpr)
        return type_fits(inner, consumed.args[0])
    if produced.name == "Optional":
        return False
    if produced.name == "Union":
        return all(type_fits(member, consumed) for member in produced.args if isinstance(member, TypeExpr))
    if consumed.name == "Union":
        return any(type_fits(produced, member) for member in consumed.args if isinstance(member, TypeExpr))
    if produced.name == "Literal":
        return _literal_fits(produced, consumed)
    if consumed.name == "Literal":
        return False
    if consumed.name in _SCALARS:
        return produced.name == consumed.name or (produced.name == "int" and consumed.name == "float")
    return _container_fits(produced, consumed)


def _literal_fits(produced: TypeExpr, consumed: TypeExpr) -> bool:
    for option in produced.args:
        try:
            check_value(option, consumed)
        except ValueMismatch:
            return False
    return True


def _container_fits(produced: TypeExpr, consumed: TypeExpr) -> bool:
    if consumed.name == "list":
        if produced.name == "tuple":
            items = [a for a in produced.args if isinstance(a, TypeExpr)]
            return not consumed.args or all(type_fits(item, _arg(consumed, 0)) for item in items)
        if produced.name != "list":
            return False
        return not consumed.args or not produced.args or type_fits(_arg(produced, 0), _arg(consumed, 0))
    if consumed.name == "dict":
        if produced.name != "dict":
            return False
        if not consumed.args or not produced.args:
            return True
        return type_fits(_arg(produced, 0), _arg(consumed, 0)) and type_fits(_arg(produced, 1), _arg(consumed, 1))
    if consumed.name == "tuple" and produced.name == "tuple":
        if not consumed.args or not produced.args:
            return True
        if len(consumed.args) != len(produced.args):
            return False
        return all(
            p is c or (isinstance(p, TypeExpr) and isinstance(c, TypeExpr) and type_fits(p, c))
            for p, c in zip(produced.args, consumed.args, strict=True)
        )
    return False


def _arg(type_: TypeExpr, index: int) -> TypeExpr:
    arg = type_.args[index]
    assert isinstance(arg, TypeExpr)
    return arg


# --------------------------------------------------------------------------- records


def check_record(
    values: Any, fields: Sequence[Field], *, what: str, lenient: bool = False, allow_missing_optional: bool = True
) -> dict[str, Any]:
    """Check a JSON object against named fields; errors name the field (`extra.field`)."""
    if not isinstance(values, Mapping):
        raise InvalidInput(f"{what} must be a JSON object", {"field": None})
    known = {field.name for field in fields}
    for name in values:
        if name not in known:
            raise InvalidInput(
                f"unknown {what} field '{name}'; expected: {', '.join(sorted(known)) or 'none'}", {"field": name}
            )
    result: dict[str, Any] = {}
    for field in fields:
        if field.name not in values:
            if allow_missing_optional and is_optional(field.type):
                result[field.name] = None
                continue
            raise InvalidInput(f"missing {what} field '{field.name}' ({field.type.render()})", {"field": field.name})
        try:
            result[field.name] = check_value(values[field.name], field.type, lenient=lenient)
        except ValueMismatch as exc:
            raise InvalidInput(
                f"{what} field '{field.name}{exc.where}': {exc.message}", {"field": field.name, "at": exc.where}
            ) from None
    return result
