from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from cognitive.models import Signature
from cognitive.services.common import require_json_object, save_unique
from cognitive.services.modules import modules_reset_for_signature
from cognitive.signatures import parse_signature


def _apply_spec(signature: Signature, spec: str, instructions: str, descriptions: dict[str, str] | None) -> None:
    parsed = parse_signature(spec, instructions, descriptions)
    signature.spec = spec
    signature.instructions = parsed.instructions
    signature.input_fields = [field.as_dict() for field in parsed.inputs]
    signature.output_fields = [field.as_dict() for field in parsed.outputs]



def signature_create(
    *,
    owner: AbstractBaseUser,
    name: str,
    spec: str,
    instructions: str = "",
    descriptions: dict[str, str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Signature:
    signature = Signature(owner=owner, name=name, metadata=require_json_object(metadata or {}, "metadata"))
    _apply_spec(signature, spec, instructions, descriptions)
    return save_unique(signature, what="you already have a signature")


def signature_update(
    *,
    signature: Signature,
    name: str | None = None,
    spec: str | None = None,
    instructions: str | None = None,
    descriptions: dict[str, str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Signature:
    if name is not None:
        signature.name = name
    if metadata is not None:
        signature.metadata = require_json_object(metadata, "metadata")
    redefines = spec is not None or instructions is not None or descriptions is not None
    if redefines:
        before = (signature.input_fields, signature.output_fields, signature.instructions)
        _apply_spec(
            signature,
            spec if spec is not None else signature.spec,
            instructions if instructions is not None else signature.instructions,
            descriptions,
        )
        redefines = before != (signature.input_fields, signature.output_fields, signature.instructions)
    with transaction.atomic():
        save_unique(signature, what="you already have a signature")
        if redefines:
            modules_reset_for_signature(signature=signature)
    return signature
