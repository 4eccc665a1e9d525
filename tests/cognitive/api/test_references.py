"""Every reference in a request body takes the row's id or its name, only among the caller's own rows."""

from __future__ import annotations

import json

import pytest

from cognitive.models import Dataset, Module, Program
from cognitive.services.corpora import corpus_create
from cognitive.services.modules import module_create
from cognitive.services.programs import program_create
from cognitive.services.signatures import signature_create
from tests.factories import LanguageModelFactory, OptimizerFactory, SignatureFactory
from tests.optimization_helpers import make_dataset, make_program

pytestmark = pytest.mark.django_db

LM_URL = "http://127.0.0.1:9/v1"  # never called


@pytest.fixture
def lm():
    return LanguageModelFactory(name="local")


@pytest.fixture
def signature(user):
    return signature_create(owner=user, name="qa", spec="question: str -> answer: str")


def post(api, url, body):
    return api.post(url, body, format="json")


@pytest.mark.parametrize("by", ["id", "name"])
def test_a_module_takes_its_signature_and_lm_by_id_or_name(api, signature, lm, by):
    body = {"name": "m", "type": "predict", "signature": str(getattr(signature, by)), "lm": str(getattr(lm, by))}

    response = post(api, "/api/modules/", body)

    assert response.status_code == 201, response.content
    # Responses keep their shapes: the signature's id, the LM's name.
    assert (response.json()["signature"], response.json()["lm"]) == (str(signature.pk), "local")
    module = Module.objects.get()
    assert (module.signature_id, module.lm_id) == (signature.pk, lm.pk)


def test_a_patch_takes_a_signature_by_name(api, user, signature):
    module = module_create(owner=user, name="m", type="predict", signature=SignatureFactory(owner=user))

    response = api.patch(f"/api/modules/{module.pk}/", {"signature": "qa"}, format="json")

    assert response.status_code == 200, response.content
    assert Module.objects.get().signature_id == signature.pk


def test_another_users_signature_is_unknown_by_id_and_by_name_alike(api, other_user):
    theirs = signature_create(owner=other_user, name="secret", spec="a -> b")
    messages = {}
    for value in (str(theirs.pk), "secret", "00000000-0000-0000-0000-000000000000", "missing"):
        response = post(api, "/api/modules/", {"name": "m", "type": "predict", "signature": value})
        assert response.status_code == 400, response.content
        messages[value] = response.json()["extra"]["fields"]["signature"][0].replace(value, "<value>")
    # The same words whether the row is someone else's or does not exist at all.
    assert len(set(messages.values())) == 1, messages
    assert not Module.objects.exists()


def test_every_field_error_of_a_request_comes_at_once(api, lm):
    body = {"name": "m", "type": "predict", "signature": "nope", "lm": "no-such-lm", "config": {"temperature": 9}}

    response = post(api, "/api/modules/", body)

    assert response.status_code == 400
    fields = response.json()["extra"]["fields"]
    assert set(fields) == {"signature", "lm", "config"}, fields
    assert "no-such-lm" in fields["lm"][0] and "temperature" in fields["config"][0]


def test_a_pipeline_error_comes_with_the_other_field_errors_and_keeps_its_path(api):
    body = {"name": "", "pipeline": {"steps": [{"id": "a", "module": "ghost"}]}}

    response = post(api, "/api/programs/", body)

    assert response.status_code == 400
    extra = response.json()["extra"]
    assert set(extra["fields"]) == {"name", "pipeline"}
    assert "unknown module 'ghost'" in extra["fields"]["pipeline"][0]


def test_a_pipeline_names_modules_and_corpora_by_id_and_is_stored_with_names(api, user, signature, lm):
    module = module_create(owner=user, name="qa", type="predict", signature=signature)
    corpus = corpus_create(owner=user, name="docs", documents=["Paris is in France."], embedding_lm=lm)
    pipeline = {
        "steps": [
            {"id": "search", "builtin": "retrieve", "corpus": str(corpus.pk), "inputs": {"query": "$input.question"}},
            {"id": "answer", "module": str(module.pk), "inputs": {"question": "$input.question"}},
        ]
    }

    response = post(api, "/api/programs/", {"name": "p", "pipeline": pipeline})

    assert response.status_code == 201, response.content
    steps = response.json()["pipeline"]["steps"]
    assert (steps[0]["corpus"], steps[1]["module"]) == ("docs", "qa")
    assert Program.objects.get().pipeline["steps"][1]["module"] == "qa"


def test_a_pipeline_cannot_name_another_users_module_by_id(api, other_user):
    theirs = module_create(
        owner=other_user, name="theirs", type="predict", signature=SignatureFactory(owner=other_user)
    )

    pipeline = {"steps": [{"id": "a", "module": str(theirs.pk)}]}

    response = post(api, "/api/programs/", {"name": "p", "pipeline": pipeline})

    assert response.status_code == 400
    body = response.json()
    assert body["extra"]["path"] == "steps[0].module"
    assert "theirs" not in body["message"]  # the id is repeated, never the other user's name


def test_a_dataset_names_its_program_by_name(api, user):
    program = program_create(owner=user, name="adder")

    response = post(api, "/api/datasets/", {"name": "d", "program": "adder"})

    assert response.status_code == 201, response.content
    assert response.json()["program"] == str(program.pk)
    assert Dataset.objects.get().program_id == program.pk


def test_a_dataset_cannot_name_another_users_program(api, other_user):
    program_create(owner=other_user, name="theirs")

    response = post(api, "/api/datasets/", {"name": "d", "program": "theirs"})

    assert response.status_code == 400
    assert "no program with the id or name 'theirs'" in response.json()["message"]


def test_a_corpus_takes_its_embedding_lm_by_id(api, lm):
    response = post(api, "/api/corpora/", {"name": "c", "documents": ["x"], "embedding_lm": str(lm.pk)})

    assert response.status_code == 201, response.content
    assert response.json()["embedding_lm"] == "local"


@pytest.mark.parametrize("by", ["id", "name"])
def test_optimize_takes_a_saved_optimizer_and_a_dataset_by_id_or_name(api, user, by):
    program = make_program(user, LM_URL)
    dataset = make_dataset(program)
    optimizer = OptimizerFactory(owner=user, name="few", type="labeled_few_shot", config={"k": 3})
    body = {"optimizer": str(getattr(optimizer, by)), "dataset": str(getattr(dataset, by)), "metric": "exact_match"}

    response = post(api, f"/api/programs/{program.pk}/optimize/", body)

    assert response.status_code == 202, response.content
    run = response.json()["optimization_run"]
    assert (run["optimizer"], run["dataset"], run["optimizer_config"]) == (str(optimizer.pk), str(dataset.pk), {"k": 3})


def test_optimize_reports_optimizer_config_and_metric_errors_together(api, user, other_user):
    program = make_program(user, LM_URL)
    make_dataset(program)
    theirs = OptimizerFactory(owner=other_user, name="theirs")

    bad_ref = post(api, f"/api/programs/{program.pk}/optimize/", {
        "optimizer": str(theirs.pk), "dataset": "adder-data", "metric": "exact_match",
    })
    several = post(api, f"/api/programs/{program.pk}/optimize/", {
        "optimizer": "labeled_few_shot", "dataset": "nope", "metric": "nope", "config": {"bananas": 1},
    })

    assert bad_ref.status_code == 400 and "unknown optimizer" in bad_ref.json()["extra"]["fields"]["optimizer"][0]
    assert several.status_code == 400
    assert set(several.json()["extra"]["fields"]) == {"dataset", "metric", "config"}


def test_module_execute_takes_the_context_lm_by_id(api, user, signature, lm):
    module = module_create(owner=user, name="m", type="predict", signature=signature)

    # An id the service could not read before; a bad one still names `context.lm`.
    good = post(api, f"/api/modules/{module.pk}/execute/", {"input": {}, "context": {"lm": str(lm.pk)}})
    bad = post(api, f"/api/modules/{module.pk}/execute/", {"input": {}, "context": {"lm": "nope"}})

    assert good.status_code == 400 and good.json()["extra"].get("field") != "context.lm"
    assert bad.status_code == 400 and bad.json()["extra"]["field"] == "context.lm"


def test_staff_with_two_users_rows_of_one_name_must_use_the_id(client_for, staff, user, other_user):
    mine = signature_create(owner=user, name="qa", spec="a -> b")
    signature_create(owner=other_user, name="qa", spec="a -> b")
    api = client_for(staff)

    ambiguous = post(api, "/api/modules/", {"name": "m", "type": "predict", "signature": "qa"})
    by_id = post(api, "/api/modules/", {"name": "m", "type": "predict", "signature": str(mine.pk)})

    assert ambiguous.status_code == 400 and "by its id" in ambiguous.json()["message"]
    assert by_id.status_code == 201, by_id.content
    # Staff's own row of that name is the one meant.
    staff_own = signature_create(owner=staff, name="qa", spec="a -> b")
    own = post(api, "/api/modules/", {"name": "m2", "type": "predict", "signature": "qa"})
    assert own.status_code == 201 and own.json()["signature"] == str(staff_own.pk)


def test_the_admin_program_form_takes_a_module_by_id_and_stores_its_name(staff, user, signature):
    from django.test import Client

    module = module_create(owner=user, name="qa", type="predict", signature=signature)
    client = Client()
    client.force_login(staff)
    pipeline = json.dumps({"steps": [{"id": "a", "module": str(module.pk)}]})

    response = client.post("/admin/cognitive/program/add/", {
        "name": "p", "description": "", "pipeline": pipeline, "variables": "{}", "owner": user.pk,
    })

    assert response.status_code == 302, response.content.decode()[-2000:]
    assert Program.objects.get().pipeline == {"steps": [{"id": "a", "module": "qa"}]}


def test_a_corpus_reports_a_bad_passage_and_an_unknown_lm_together(api):
    response = post(api, "/api/corpora/", {"name": "c", "documents": ["ok", ""], "embedding_lm": "nope"})

    assert response.status_code == 400
    extra = response.json()["extra"]
    assert set(extra["fields"]) == {"documents", "embedding_lm"}
    assert extra["fields"]["documents"] == ["documents[1] is empty"]
