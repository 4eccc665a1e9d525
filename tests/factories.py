from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth import get_user_model

from cognitive.models import Execution, LanguageModel, Module, Optimizer, Program, ProgramVersion, Signature
from cognitive.services.signatures import signature_create


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw")


class StaffFactory(UserFactory):
    is_staff = True
    is_superuser = True


class LanguageModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LanguageModel

    name = factory.Sequence(lambda n: f"lm-{n}")
    model = "openai/local"
    api_base = "http://127.0.0.1:8765/v1"


class SignatureFactory(factory.django.DjangoModelFactory):
    """Goes through the service, so parsed fields are always real."""

    class Meta:
        model = Signature

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"sig-{n}")
    spec = "question: str -> answer: str"
    instructions = ""

    @classmethod
    def _create(cls, model_class: type, *args: Any, **kwargs: Any) -> Signature:
        return signature_create(**kwargs)


class ModuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Module

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"module-{n}")
    type = "predict"
    signature = factory.SubFactory(SignatureFactory, owner=factory.SelfAttribute("..owner"))


class ProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Program

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"program-{n}")
    pipeline = factory.LazyFunction(dict)


class ProgramVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProgramVersion

    program = factory.SubFactory(ProgramFactory)
    number = factory.Sequence(lambda n: n + 1)


class OptimizerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Optimizer

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"optimizer-{n}")
    type = "labeled_few_shot"
    config = factory.LazyFunction(lambda: {"k": 4})


class ExecutionFactory(factory.django.DjangoModelFactory):
    """A top-level run of a program; pass `status=` to start it in any state (allowed on creation)."""

    class Meta:
        model = Execution

    owner = factory.SubFactory(UserFactory)
    program = factory.SubFactory(ProgramFactory, owner=factory.SelfAttribute("..owner"))
    input = factory.LazyFunction(lambda: {"question": "What is 2 + 2?"})
