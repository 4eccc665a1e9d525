"""Creating and changing resources through the API, and every way a request can be wrong."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, transaction

from cognitive.errors import InvalidInput
from cognitive.models import ImmutableRowError, Module, Optimizer, ProgramVersion, Signature
from cognitive.services.signatures import signature_create
from cognitive.signatures import parse_signature
from tests.factories import (
    LanguageModelFactory,
    ModuleFactory,
    OptimizerFactory,
    ProgramFactory,
    ProgramVersionFactory,
    SignatureFactory,
)

pytestmark = pytest.mark.django_db


def error(response, status: int) -> dict[str, Any]:
    """The one error shape: `{"message": str, "extra": dict}` with the given status."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"message", "extra"}, body
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["extra"], dict)
    return body


def created(response) -> dict[str, Any]:
    assert response.status_code == 201, response.content
    return response.json()


# --------------------------------------------------------------------------- signatures


def test_signature_post_returns_parsed_fields_and_complexity(api, user):
    body = created(
        api.post(
            "/api/signatures/",
            {
                "name": "rag",
                "spec": "question: str, context: list[str] -> answer: str",
                "instructions": "Answer from the context.",
                "descriptions": {"context": "retrieved passages"},
            },
            format="json",
        )
    )

    assert body["input_fields"] == [
        {"name": "question", "type": "str", "description": ""},
        {"name": "context", "type": "list[str]", "description": "retrieved passages"},
    ]
    assert body["output_fields"] == [{"name": "answer", "type": "str", "description": ""}]
    assert body["complexity"] == 4
    assert body["instructions"] == "Answer from the context."
    assert "descriptions" not in body
    assert Signature.objects.get(pk=body["id"]).owner == user


def test_signature_with_a_misspelled_type_is_400_with_its_position(api):
    spec = "question: str -> answer: strng"
    with pytest.raises(InvalidInput) as parsed:  # the parser's own words, so the API must repeat them exactly
        parse_signature(spec)

    body = error(api.post("/api/signatures/", {"name": "s", "spec": spec}, format="json"), 400)

    assert body["message"] == parsed.value.message == "unknown type 'strng' for field 'answer'"
    assert body["extra"]["position"] == spec.index("strng")
    assert not Signature.objects.exists()


@pytest.mark.parametrize(
    ("spec", "words", "at"),
    [
        ("question: str answer: str", "missing '->'", None),
        ("a -> b -> c", "more than one '->'", "-> c"),
        (" -> answer", "no input fields", "->"),
        ("question ->  ", "no output fields", None),
        ("question, question -> answer", "duplicate input field 'question'", "question ->"),
        ("question -> question", "both an input and an output", "question"),
        ("2fast -> answer", "2fast", "2fast"),
    ],
)
def test_every_kind_of_bad_spec_is_400_naming_it(api, spec, words, at):
    body = error(api.post("/api/signatures/", {"name": "s", "spec": spec}, format="json"), 400)

    assert words in body["message"]
    assert isinstance(body["extra"]["position"], int)
    if at == "question":  # the output side's 'question'
        assert body["extra"]["position"] == spec.rindex("question")
    elif at is not None:
        assert body["extra"]["position"] == spec.index(at)


def test_signature_patch_reparses_and_rejects_a_bad_spec(api, user):
    signature = SignatureFactory(owner=user, spec="question -> answer")

    changed = api.patch(f"/api/signatures/{signature.pk}/", {"spec": "question -> answer: int"}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["output_fields"] == [{"name": "answer", "type": "int", "description": ""}]

    body = error(api.patch(f"/api/signatures/{signature.pk}/", {"spec": "q -> a: list[str"}, format="json"), 400)
    assert "position" in body["extra"]
    signature.refresh_from_db()
    assert signature.spec == "question -> answer: int"


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"name": "s", "spec": "q -> a", "descriptions": {"zzz": "nope"}}, "unknown field 'zzz'"),
        ({"name": "s", "spec": "q -> a", "metadata": [1, 2]}, "metadata must be a JSON object"),
        ({"name": "s"}, "spec"),
        ({"spec": "q -> a"}, "name"),
    ],
)
def test_signature_bad_fields_are_400(api, payload, words):
    assert words in error(api.post("/api/signatures/", payload, format="json"), 400)["message"]


def test_signature_by_name(api, user, other_user):
    wanted = SignatureFactory(owner=user, name="qa")
    SignatureFactory(owner=user, name="qa-long")
    SignatureFactory(owner=other_user, name="qa")

    rows = api.get("/api/signatures/", {"name": "qa"}).json()["results"]

    assert [row["id"] for row in rows] == [str(wanted.pk)]
    assert api.get("/api/signatures/", {"name": "missing"}).json()["results"] == []


def test_deleting_a_signature_a_module_uses_is_409(api, user):
    module = ModuleFactory(owner=user, name="uses-it")

    body = error(api.delete(f"/api/signatures/{module.signature_id}/"), 409)

    assert body["extra"]["used_by"] == ["uses-it"]
    assert Signature.objects.filter(pk=module.signature_id).exists()


# --------------------------------------------------------------------------- duplicates


@pytest.mark.parametrize(
    ("route", "existing", "payload"),
    [
        ("signatures", lambda u: SignatureFactory(owner=u, name="dup"), {"name": "dup", "spec": "q -> a"}),
        ("programs", lambda u: ProgramFactory(owner=u, name="dup"), {"name": "dup"}),
        (
            "optimizers",
            lambda u: OptimizerFactory(owner=u, name="dup"),
            {"name": "dup", "type": "labeled_few_shot", "config": {}},
        ),
        (
            "modules",
            lambda u: ModuleFactory(owner=u, name="dup"),
            {"name": "dup", "type": "predict", "signature": None},
        ),
    ],
)
def test_duplicate_names_are_409_per_owner(client_for, user, other_user, route, existing, payload):
    first = existing(user)
    if route == "modules":
        payload = {**payload, "signature": str(first.signature_id)}

    body = error(client_for(user).post(f"/api/{route}/", payload, format="json"), 409)
    assert "dup" in body["message"]
    assert body["extra"] == {"field": "name"}

    if route == "modules":  # another user's module list is separate, with their own signature
        payload = {**payload, "signature": str(SignatureFactory(owner=other_user).pk)}
    assert client_for(other_user).post(f"/api/{route}/", payload, format="json").status_code == 201


def test_renaming_onto_an_existing_name_is_409(api, user):
    SignatureFactory(owner=user, name="taken")
    other = SignatureFactory(owner=user, name="free")

    error(api.patch(f"/api/signatures/{other.pk}/", {"name": "taken"}, format="json"), 409)
    other.refresh_from_db()
    assert other.name == "free"


def test_duplicate_lm_name_is_409(client_for, staff):
    LanguageModelFactory(name="gpt")

    body = error(client_for(staff).post("/api/lms/", {"name": "gpt", "model": "openai/gpt-4o"}, format="json"), 409)

    assert "gpt" in body["message"]


# --------------------------------------------------------------------------- language models


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"model": "gpt-4o"}, "model"),
        ({"api_key_env": "openai key"}, "api_key_env"),
        ({"api_base": "not a url"}, "api_base"),
        ({"params": {"temprature": 0.5}}, "unknown LM param 'temprature'"),
        ({"params": {"temperature": "hot"}}, "params.temperature"),
        ({"params": [1]}, "params"),
        ({"rpm": 0}, "rpm"),
    ],
)
def test_lm_validation(client_for, staff, payload, words):
    payload = {"name": "lm", "model": "openai/gpt-4o-mini", **payload}

    assert words in error(client_for(staff).post("/api/lms/", payload, format="json"), 400)["message"]


# --------------------------------------------------------------------------- modules


@pytest.fixture
def signature(user) -> Signature:
    return SignatureFactory(owner=user, spec="question -> answer")


def module_payload(signature: Signature, **fields: Any) -> dict[str, Any]:
    return {"name": "qa", "type": "predict", "signature": str(signature.pk), **fields}


def test_module_create_with_an_lm_by_name(api, signature):
    LanguageModelFactory(name="local")

    body = created(
        api.post(
            "/api/modules/",
            module_payload(signature, type="chain_of_thought", lm="local", config={"temperature": 0.3}, cache_ttl=60),
            format="json",
        )
    )

    assert body["lm"] == "local"
    assert body["type"] == "chain_of_thought"
    assert body["config"] == {"temperature": 0.3}
    assert body["state"] == "uninitialized"
    assert body["executing"] == 0
    assert Module.objects.get(pk=body["id"]).lm.name == "local"


def test_module_without_an_lm_uses_the_default(api, signature):
    assert created(api.post("/api/modules/", module_payload(signature), format="json"))["lm"] is None


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"config": {"temprature": 0.5}}, "unknown config key 'temprature'"),
        ({"config": {"temperature": 3}}, "config.temperature"),
        ({"config": {"temperature": "warm"}}, "config.temperature"),
        ({"config": {"max_tokens": 0}}, "config.max_tokens"),
        ({"config": [1]}, "config"),
        ({"type": "transformer"}, "type"),
        ({"lm": "nowhere"}, "lm"),
        ({"cache_ttl": -1}, "cache_ttl"),
    ],
)
def test_module_validation_names_the_problem(api, signature, fields, words):
    body = error(api.post("/api/modules/", module_payload(signature, **fields), format="json"), 400)

    assert words in body["message"]
    assert not Module.objects.exists()


def test_module_config_errors_carry_their_path(api, signature):
    body = error(api.post("/api/modules/", module_payload(signature, config={"temperature": 9}), format="json"), 400)

    assert body["extra"]["path"] == "config.temperature"
    assert list(body["extra"]["fields"]) == ["config"]  # reported as a field error, with the others


def test_module_with_another_users_signature_is_400(api, other_user):
    theirs = SignatureFactory(owner=other_user)

    body = error(api.post("/api/modules/", module_payload(theirs), format="json"), 400)

    assert body["message"].startswith("signature:")
    assert not Module.objects.exists()


def test_module_patch_cannot_take_another_users_signature(api, user, other_user):
    module = ModuleFactory(owner=user)
    theirs = SignatureFactory(owner=other_user)

    error(api.patch(f"/api/modules/{module.pk}/", {"signature": str(theirs.pk)}, format="json"), 400)
    module.refresh_from_db()
    assert module.signature.owner == user


def test_module_patch_validates_config(api, user):
    module = ModuleFactory(owner=user, config={"temperature": 0.1})

    body = error(api.patch(f"/api/modules/{module.pk}/", {"config": {"top_k": 3}}, format="json"), 400)

    assert "top_k" in body["message"]
    module.refresh_from_db()
    assert module.config == {"temperature": 0.1}


def test_module_state_cannot_be_written(api, user):
    module = ModuleFactory(owner=user)

    response = api.patch(f"/api/modules/{module.pk}/", {"state": "ready", "error_reason": "x"}, format="json")

    assert response.status_code == 200
    module.refresh_from_db()
    assert (module.state, module.error_reason) == ("uninitialized", "")


def test_deleting_an_lm_a_module_uses_is_409(client_for, staff, user):
    lm = LanguageModelFactory(name="busy")
    ModuleFactory(owner=user, lm=lm)

    error(client_for(staff).delete(f"/api/lms/{lm.pk}/"), 409)


# --------------------------------------------------------------------------- programs


def test_program_create_stores_the_pipeline(api, user):
    ModuleFactory(owner=user, name="qa")
    pipeline = {"steps": [{"id": "answer", "module": "qa"}]}

    body = created(
        api.post("/api/programs/", {"name": "p", "description": "d", "pipeline": pipeline}, format="json")
    )

    assert body["pipeline"] == pipeline
    assert body["status"] == "draft"
    assert body["variables"] == {}
    assert body["active_version"] is None


@pytest.mark.parametrize("field", ["pipeline", "variables"])
@pytest.mark.parametrize("value", [[1, 2], "steps", 3])
def test_program_json_fields_must_be_objects(api, user, field, value):
    body = error(api.post("/api/programs/", {"name": "p", field: value}, format="json"), 400)
    assert field in body["message"]

    program = ProgramFactory(owner=user)
    error(api.patch(f"/api/programs/{program.pk}/", {field: value}, format="json"), 400)


def test_program_status_cannot_be_written(api, user):
    program = ProgramFactory(owner=user)

    api.patch(f"/api/programs/{program.pk}/", {"status": "active"}, format="json")

    program.refresh_from_db()
    assert program.status == "draft"


# --------------------------------------------------------------------------- program versions


def test_program_versions_are_immutable():
    version = ProgramVersionFactory(state={"answer": {"demos": []}})

    version.scores = {"accuracy": 1.0}
    with pytest.raises(ImmutableRowError):
        version.save()
    fresh = ProgramVersion.objects.get(pk=version.pk)
    with pytest.raises(ImmutableRowError):
        fresh.save(update_fields=["scores"])
    assert ProgramVersion.objects.get(pk=version.pk).scores == {}


def test_program_version_numbers_are_unique_per_program():
    version = ProgramVersionFactory(number=1)

    with pytest.raises(IntegrityError), transaction.atomic():
        ProgramVersionFactory(program=version.program, number=1)


# --------------------------------------------------------------------------- optimizers


VALID_OPTIMIZER_CONFIGS = {
    "bootstrap_few_shot": {"max_bootstrapped_demos": 2, "max_labeled_demos": 4, "max_rounds": 1},
    "bootstrap_random_search": {"num_candidate_programs": 4, "num_threads": 2, "labeled_sample": False},
    "mipro_v2": {"auto": "light", "num_threads": 2, "minibatch_size": 10},
    "simba": {"bsize": 8, "max_steps": 2, "seed": 1},
    "gepa": {"auto": "light", "reflection_minibatch_size": 2},
    "copro": {"breadth": 3, "depth": 1, "init_temperature": 1.0},
    "labeled_few_shot": {"k": 4, "sample": False},
}


@pytest.mark.parametrize(("type_", "config"), list(VALID_OPTIMIZER_CONFIGS.items()))
def test_each_optimizer_type_accepts_a_valid_config(api, type_, config):
    body = created(api.post("/api/optimizers/", {"name": type_, "type": type_, "config": config}, format="json"))

    assert (body["type"], body["config"]) == (type_, config)
    assert Optimizer.objects.get(pk=body["id"]).config == config


@pytest.mark.parametrize("type_", list(VALID_OPTIMIZER_CONFIGS))
def test_each_optimizer_type_rejects_an_unknown_argument(api, type_):
    config = {"num_bananas": 3}

    body = error(api.post("/api/optimizers/", {"name": "o", "type": type_, "config": config}, format="json"), 400)

    assert "num_bananas" in body["message"]
    assert body["extra"]["path"] == "config.num_bananas"


@pytest.mark.parametrize(
    ("type_", "config", "words"),
    [
        ("labeled_few_shot", {"k": "four"}, "'k' must be int"),
        ("copro", {"breadth": True}, "'breadth' must be int"),
        ("simba", {"temperature_for_sampling": "warm"}, "'temperature_for_sampling' must be float"),
        ("mipro_v2", {"auto": "extreme"}, "extreme"),
        ("gepa", {}, "Exactly one of"),
    ],
)
def test_wrongly_typed_or_inconsistent_optimizer_args_are_400(api, type_, config, words):
    body = error(api.post("/api/optimizers/", {"name": "o", "type": type_, "config": config}, format="json"), 400)

    assert words in body["message"]


@pytest.mark.parametrize("argument", ["metric", "trainset", "prompt_model", "log_dir"])
def test_platform_owned_optimizer_arguments_are_refused(api, argument):
    config = {argument: "anything"}

    body = error(api.post("/api/optimizers/", {"name": "o", "type": "mipro_v2", "config": config}, format="json"), 400)

    assert argument in body["message"]


def test_beacon_says_what_to_use_instead(api):
    body = error(api.post("/api/optimizers/", {"name": "o", "type": "beacon", "config": {}}, format="json"), 400)

    assert "beacon" in body["message"]
    assert "use 'bootstrap_random_search' or 'mipro_v2'" in body["message"]


def test_unknown_optimizer_type_lists_the_choices(api):
    body = error(api.post("/api/optimizers/", {"name": "o", "type": "adam", "config": {}}, format="json"), 400)

    assert "adam" in body["message"]
    assert "labeled_few_shot" in body["message"]


def test_optimizer_patch_revalidates(api, user):
    optimizer = OptimizerFactory(owner=user, type="labeled_few_shot", config={"k": 4})

    error(api.patch(f"/api/optimizers/{optimizer.pk}/", {"type": "copro"}, format="json"), 400)  # k is not COPRO's
    optimizer.refresh_from_db()
    assert (optimizer.type, optimizer.config) == ("labeled_few_shot", {"k": 4})
    ok = api.patch(f"/api/optimizers/{optimizer.pk}/", {"type": "copro", "config": {"depth": 2}}, format="json")
    assert ok.json()["config"] == {"depth": 2}


# --------------------------------------------------------------------------- generic request errors


def test_malformed_json_is_400(api):
    response = api.post("/api/signatures/", "{not json", content_type="application/json")

    assert "JSON" in error(response, 400)["message"]


def test_unknown_id_is_404(api):
    error(api.get("/api/signatures/00000000-0000-0000-0000-000000000000/"), 404)
    error(api.get("/api/signatures/not-a-uuid/"), 404)


def test_put_is_not_offered(api, user):
    signature = SignatureFactory(owner=user)

    error(api.put(f"/api/signatures/{signature.pk}/", {"name": "x", "spec": "a -> b"}, format="json"), 405)


def test_services_refuse_what_the_api_refuses(user):
    """The API is not the only way in: the service itself rejects a bad spec with its position."""
    with pytest.raises(InvalidInput) as raised:
        signature_create(owner=user, name="s", spec="q -> a: flaot")

    assert raised.value.extra == {"position": len("q -> a: ")}
