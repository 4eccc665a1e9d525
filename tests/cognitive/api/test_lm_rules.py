"""Secrets that stay secret and LMs only for whom they are meant (issue 11).

Before: a staff user could point an LM's key variable at `SECRET_KEY` or `DATABASE_URL` (and a
worker would send that value to the LM's api_base), and any user could name any LM.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from cognitive.models import LanguageModel, LMAvailability, Module
from cognitive.services.signatures import signature_create
from tests.factories import LanguageModelFactory
from tests.optimization_helpers import make_dataset, make_program

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

LM = {"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": "https://llm.example.com/v1"}


@pytest.mark.parametrize(
    "variable",
    ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DSPEX_DEFAULT_LM_KEY_ENV", "HOME", "PATH",
     "AWS_SECRET_ACCESS_KEY"],
)
def test_an_lm_key_variable_cannot_name_a_setting_or_an_arbitrary_variable(client_for, staff, variable):
    response = client_for(staff).post("/api/lms/", {**LM, "api_key_env": variable}, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["message"].startswith("api_key_env:")
    assert not LanguageModel.objects.exists()


def test_a_setting_the_project_reads_is_refused_even_if_the_pattern_allows_it(client_for, staff, settings):
    settings.DSPEX_LM_KEY_ENV_PATTERN = r"^[A-Z_]+$"  # an operator widened the pattern too far
    refused = client_for(staff).post("/api/lms/", {**LM, "api_key_env": "SECRET_KEY"}, format="json")
    allowed = client_for(staff).post("/api/lms/", {**LM, "api_key_env": "ANTHROPIC_KEY"}, format="json")

    assert refused.status_code == 400 and "own settings" in refused.json()["message"]
    assert allowed.status_code == 201


@pytest.mark.parametrize("variable", ["OPENAI_API_KEY", "DSPEX_LM_KEY_TEAM_A"])
def test_key_variables_matching_the_pattern_are_accepted(client_for, staff, variable):
    response = client_for(staff).post("/api/lms/", {**LM, "api_key_env": variable}, format="json")
    assert response.status_code == 201, response.content


def test_an_existing_lm_cannot_be_moved_to_a_settings_variable(client_for, staff):
    lm = LanguageModelFactory(api_key_env="OPENAI_API_KEY")
    response = client_for(staff).patch(f"/api/lms/{lm.pk}/", {"api_key_env": "SECRET_KEY"}, format="json")
    assert response.status_code == 400
    assert LanguageModel.objects.get(pk=lm.pk).api_key_env == "OPENAI_API_KEY"


def test_api_base_hosts_can_be_restricted(client_for, staff, settings):
    settings.DSPEX_LM_ALLOWED_HOSTS = ["llm.example.com"]
    client = client_for(staff)

    ok = client.post("/api/lms/", LM, format="json")
    elsewhere = client.post("/api/lms/", {**LM, "name": "evil", "api_base": "https://evil.example/v1"}, format="json")

    assert ok.status_code == 201
    assert elsewhere.status_code == 400 and elsewhere.json()["message"].startswith("api_base:")


# --------------------------------------------------------------------------- availability


@pytest.fixture
def team():
    return Group.objects.create(name="team")


@pytest.fixture
def private_lm(team, local_lm):
    lm = LanguageModelFactory(name="private", api_base=local_lm.url, availability=LMAvailability.GROUPS)
    lm.groups.add(team)
    return lm


@pytest.fixture
def signature(user):
    return signature_create(owner=user, name="qa", spec="question: str -> answer: str")


def create_module(client, signature, lm: str):
    body = {"name": "qa", "type": "predict", "signature": str(signature.pk), "lm": lm}
    return client.post("/api/modules/", body, format="json")


def test_an_lm_for_chosen_groups_looks_absent_to_everyone_else(api, signature, private_lm):
    hidden = create_module(api, signature, "private")
    absent = create_module(api, signature, "no-such-lm")

    assert hidden.status_code == absent.status_code == 400
    assert hidden.json()["message"].replace("private", "X") == absent.json()["message"].replace("no-such-lm", "X")
    assert "private" not in [row["name"] for row in api.get("/api/lms/").json()["results"]]
    assert api.get(f"/api/lms/{private_lm.pk}/").status_code == 404
    assert not Module.objects.exists()


def test_group_members_and_staff_may_use_it(client_for, user, staff, signature, private_lm, team):
    user.groups.add(team)
    assert create_module(client_for(user), signature, "private").status_code == 201
    assert "private" in [row["name"] for row in client_for(staff).get("/api/lms/").json()["results"]]


def test_a_per_call_override_cannot_name_an_unavailable_lm(api, user, signature, private_lm, local_lm):
    LanguageModelFactory(name="open", api_base=local_lm.url)
    module = create_module(api, signature, "open").json()

    response = api.post(f"/api/modules/{module['id']}/execute/",
                        {"input": {"question": "q"}, "context": {"lm": "private"}}, format="json")

    assert (response.status_code, response.json()["extra"]["field"]) == (400, "context.lm")
    assert local_lm.stats()["chat_requests"] == 0


def test_a_corpus_cannot_embed_with_an_unavailable_lm(api, private_lm):
    response = api.post("/api/corpora/", {"name": "docs", "documents": ["a"], "embedding_lm": "private"},
                        format="json")
    assert response.status_code == 400 and response.json()["message"].startswith("embedding_lm:")


def test_staff_set_availability_and_groups_over_the_api(client_for, staff, team):
    response = client_for(staff).post(
        "/api/lms/", {**LM, "availability": "groups", "groups": [team.pk]}, format="json"
    )
    assert response.status_code == 201, response.content
    lm = LanguageModel.objects.get()
    assert lm.availability == "groups" and list(lm.groups.all()) == [team]


def test_an_llm_judge_cannot_name_an_unavailable_lm(api, user, private_lm, local_lm):
    program = make_program(user, local_lm.url)
    dataset = make_dataset(program)
    body = {"optimizer": "labeled_few_shot", "dataset": str(dataset.pk), "metric": "llm_judge"}

    hidden = api.post(f"/api/programs/{program.pk}/optimize/", {**body, "metric_config": {"lm": "private"}},
                      format="json")
    absent = api.post(f"/api/programs/{program.pk}/optimize/", {**body, "metric_config": {"lm": "nope"}},
                      format="json")

    assert hidden.status_code == absent.status_code == 400
    # The field's error, worded as for an LM that does not exist: an unavailable one must look the same.
    assert hidden.json()["message"] == "metric: llm_judge: no language model named 'private'"
    assert absent.json()["message"] == "metric: llm_judge: no language model named 'nope'"
