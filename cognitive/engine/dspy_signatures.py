"""Turn parsed signatures into `dspy.Signature` classes.

The only place that does so: DSPy's own string parser (`dspy.Signature("a -> b")`)
resolves names through `importlib` and caller frames, so user text never
reaches it. Types are built here from the already-validated TypeExpr tree.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import dspy

from cognitive.signatures import Field, ParsedSignature, TypeExpr, signature_from_fields

_SCALARS: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}
_GENERICS: dict[str, type] = {"list": list, "dict": dict, "tuple": tuple}


def to_python_type(type_: TypeExpr) -> Any:
    """The typing object for `type_`, matching what DSPy's string parser builds.

    Unions use `typing.Union`/`typing.Optional` rather than `X | Y`, as DSPy does,
    so annotations compare equal to DSPy's (and render the same in prompts).
    """
    if type_.name in _SCALARS:
        return _SCALARS[type_.name]
    if type_.name == "Literal":
        return typing.Literal[type_.args]
    args = tuple(a if a is Ellipsis else to_python_type(a) for a in type_.args)
    if type_.name == "Optional":
        return typing.Optional[args[0]]  # noqa: UP045 - DSPy's representation
    if type_.name == "Union":
        return typing.Union[args]  # noqa: UP007 - DSPy's representation
    generic = _GENERICS[type_.name]
    return generic[args] if args else generic


def build_dspy_signature(parsed: ParsedSignature, name: str = "Signature") -> type[dspy.Signature]:
    fields: dict[str, tuple[Any, Any]] = {}
    for field in parsed.inputs:
        fields[field.name] = (to_python_type(field.type), dspy.InputField(**_field_kwargs(field)))
    for field in parsed.outputs:
        fields[field.name] = (to_python_type(field.type), dspy.OutputField(**_field_kwargs(field)))
    # None, not "", lets DSPy write its default "Given the fields ..." instructions.
    instructions = parsed.instructions if parsed.instructions.strip() else None
    return dspy.make_signature(fields, instructions, signature_name=name)


def _field_kwargs(field: Field) -> dict[str, str]:
    # Omitting `desc` keeps DSPy's placeholder description instead of an empty one.
    return {"desc": field.description} if field.description else {}


def build_dspy_signature_from_fields(
    input_fields: Sequence[Mapping[str, str]],
    output_fields: Sequence[Mapping[str, str]],
    instructions: str,
) -> type[dspy.Signature]:
    """Build from stored `Field.as_dict()` rows; types are re-parsed and re-validated."""
    key = json.dumps([list(input_fields), list(output_fields), instructions], sort_keys=True)
    return _build_from_fields_json(key)


@lru_cache(maxsize=512)
def _build_from_fields_json(key: str) -> type[dspy.Signature]:
    # Every run rebuilds its modules; creating the pydantic class each time cost milliseconds.
    # Signature classes are immutable (`with_instructions` etc. return new ones), so sharing is safe.
    input_fields, output_fields, instructions = json.loads(key)
    return build_dspy_signature(signature_from_fields(input_fields, output_fields, instructions))
