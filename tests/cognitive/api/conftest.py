from __future__ import annotations

import pytest

from cognitive.models import Program
from cognitive.services.modules import module_create
from cognitive.services.programs import program_activate, program_create
from cognitive.services.signatures import signature_create


@pytest.fixture
def program(user) -> Program:
    """An active one-step program: `question: str -> answer: str` through a `predict` module named qa."""
    signature = signature_create(owner=user, name="qa", spec="question: str -> answer: str")
    module_create(owner=user, name="qa", type="predict", signature=signature)
    return program_activate(
        program=program_create(owner=user, name="p", pipeline={"steps": [{"id": "qa", "module": "qa"}]})
    )
