"""Optimization over REST: start (202/409/400), runs, cancel, promote, rollback, schedules, scoping."""

from __future__ import annotations

import pytest
from django.conf import settings
from django_celery_beat.models import PeriodicTask

from cognitive.models import OptimizationRun, Program, ProgramStatus
from tests.factories import OptimizerFactory, ProgramFactory, ProgramVersionFactory, UserFactory
from tests.optimization_helpers import make_dataset, make_program

pytest_plugins = ["tests.fixtures_local_lm"]
pytestmark = pytest.mark.django_db

LM_URL = "http://127.0.0.1:9/v1"  # never called: these tests only queue runs


@pytest.fixture
def program(user):
    return make_program(user, LM_URL)


@pytest.fixture
def dataset(program):
    return make_dataset(program)


def optimize(api, program, dataset, **body):
    payload = {"optimizer": "labeled_few_shot", "dataset": str(dataset.pk), "metric": "exact_match", **body}
    return api.post(f"/api/programs/{program.pk}/optimize/", payload, format="json")


def test_optimize_answers_202_with_the_queued_run(api, program, dataset):
    response = optimize(api, program, dataset, config={"k": 2}, budget={"max_lm_calls": 100})
    assert response.status_code == 202, response.content
    run = response.json()["optimization_run"]
    assert run["status"] == "queued" and run["optimizer_type"] == "labeled_few_shot"
    assert run["budget"] == {"max_lm_calls": 100, "max_cost": settings.DSPEX_OPTIMIZATION_DEFAULT_MAX_COST}
    assert run["optimizer_config"] == {"k": 2}
    assert Program.objects.get(pk=program.pk).status == ProgramStatus.OPTIMIZING
    assert api.get(f"/api/optimization-runs/{run['id']}/").json()["progress"] == {"phase": "queued"}


def test_a_second_optimize_is_a_409(api, program, dataset):
    assert optimize(api, program, dataset).status_code == 202
    response = optimize(api, program, dataset)
    assert response.status_code == 409
    assert "already being optimized" in response.json()["message"]


def test_a_draft_program_is_a_409_naming_its_status(api, user, dataset):
    draft = ProgramFactory(owner=user)
    response = optimize(api, draft, dataset)
    assert response.status_code == 409
    assert response.json()["message"] == "only an active program can be optimized; this one is draft"


def test_bad_config_is_a_400_naming_the_argument(api, program, dataset):
    response = optimize(api, program, dataset, optimizer="bootstrap_few_shot", config={"max_round": 1})
    assert response.status_code == 400
    assert "does not accept 'max_round'" in response.json()["message"]
    assert response.json()["extra"]["field"] == "max_round"
    response = optimize(api, program, dataset, optimizer="beacon")
    assert response.status_code == 400 and "use 'bootstrap_random_search' or 'mipro_v2'" in response.json()["message"]


def test_a_saved_optimizer_can_be_named(api, user, program, dataset):
    OptimizerFactory(owner=user, name="fewshot", type="labeled_few_shot", config={"k": 3})
    response = optimize(api, program, dataset, optimizer="fewshot")
    assert response.status_code == 202
    assert response.json()["optimization_run"]["optimizer_config"] == {"k": 3}


def test_other_users_get_404_and_anonymous_401(client_for, program, dataset):
    other = client_for(UserFactory())
    assert optimize(other, program, dataset).status_code == 404
    assert optimize(client_for(None), program, dataset).status_code == 401
    assert other.post(f"/api/programs/{program.pk}/rollback/").status_code == 404


def test_runs_are_listed_filtered_scoped_and_cancelled(api, client_for, program, dataset):
    run_id = optimize(api, program, dataset).json()["optimization_run"]["id"]
    listed = api.get("/api/optimization-runs/", {"program": str(program.pk), "status": "queued"}).json()
    assert [r["id"] for r in listed["results"]] == [run_id]
    assert api.get("/api/optimization-runs/", {"status": "running"}).json()["results"] == []
    other = client_for(UserFactory())
    assert other.get("/api/optimization-runs/").json()["results"] == []
    assert other.post(f"/api/optimization-runs/{run_id}/cancel/").status_code == 404

    response = api.post(f"/api/optimization-runs/{run_id}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert Program.objects.get(pk=program.pk).status == ProgramStatus.ACTIVE
    assert api.post(f"/api/optimization-runs/{run_id}/cancel/").status_code == 409
    # The program is free again.
    assert optimize(api, program, dataset).status_code == 202


def test_promote_and_roll_back(api, program):
    v1 = ProgramVersionFactory(program=program, number=1)
    v2 = ProgramVersionFactory(program=program, number=2)
    url = f"/api/programs/{program.pk}"

    assert api.post(f"{url}/rollback/").status_code == 409  # nothing promoted yet
    assert api.post(f"{url}/promote/", {"version": str(v1.pk)}, format="json").json()["active_version"] == str(v1.pk)
    assert api.post(f"{url}/promote/", {"version": str(v2.pk)}, format="json").json()["active_version"] == str(v2.pk)

    assert api.post(f"{url}/rollback/").json()["active_version"] == str(v1.pk)
    assert api.post(f"{url}/rollback/").json()["active_version"] is None  # the modules as declared
    response = api.post(f"{url}/rollback/")
    assert response.status_code == 409 and "no earlier active version" in response.json()["message"]

    foreign = ProgramVersionFactory(program=ProgramFactory(owner=program.owner), number=1)
    response = api.post(f"{url}/promote/", {"version": str(foreign.pk)}, format="json")
    assert response.status_code == 400


def test_schedule_creates_an_editable_beat_task(api, program, dataset):
    url = f"/api/programs/{program.pk}/schedule/"
    assert api.get(url).status_code == 404
    body = {"cron": "30 2 * * 1", "optimizer": "labeled_few_shot", "dataset": str(dataset.pk), "metric": "f1"}
    response = api.post(url, body, format="json")
    assert response.status_code == 200, response.content
    schedule = response.json()
    task = PeriodicTask.objects.get(pk=schedule["periodic_task"])
    assert task.task == "workers.optimization.scheduled" and task.enabled
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("30", "2", "1")
    assert api.post(url, {**body, "cron": "61 * * * *"}, format="json").status_code == 400

    assert api.post(url, {**body, "cron": "0 4 * * *"}, format="json").json()["periodic_task"] == task.pk
    assert PeriodicTask.objects.get(pk=task.pk).crontab.hour == "4"
    assert api.delete(url).status_code == 204
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()
    assert not OptimizationRun.objects.exists()


def test_admin_shows_progress_and_a_trial_chart_and_rolls_back(client, staff, program, dataset):
    from cognitive.services.optimization_requests import optimization_start
    from cognitive.services.versions import program_promote

    run = optimization_start(
        program=program, owner=program.owner, optimizer="labeled_few_shot", dataset=dataset, metric="exact_match"
    )
    OptimizationRun.objects.filter(pk=run.pk).update(
        trials=[{"n": 1, "score": 0.25, "phase": "compiling"}, {"n": 2, "score": 0.75, "phase": "compiling"}],
        progress={"phase": "compiling", "trials_done": 2, "trials_planned": 4, "lm_calls": 30},
        baseline_score=0.375,
    )
    client.force_login(staff)
    listing = client.get("/admin/cognitive/optimizationrun/")
    assert listing.status_code == 200 and b"2/4 trials" in listing.content
    page = client.get(f"/admin/cognitive/optimizationrun/{run.pk}/change/")
    assert page.status_code == 200
    assert b"<svg" in page.content and b"trial 2: 0.750" in page.content and b"baseline 0.375" in page.content

    v1 = ProgramVersionFactory(program=program, number=1)
    program_promote(program=program, version=v1)
    response = client.post(
        "/admin/cognitive/program/", {"action": "rollback_programs", "_selected_action": [str(program.pk)]}
    )
    assert response.status_code == 302
    assert Program.objects.get(pk=program.pk).active_version is None
