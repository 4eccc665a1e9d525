"""The Execution change page shows the run as a readable tree."""

from __future__ import annotations

from unittest import mock

import pytest
from django.urls import reverse

from cognitive.models import Execution
from cognitive.services.modules import module_create
from cognitive.services.programs import program_activate, program_create
from cognitive.services.run_requests import program_run_request, run_now
from cognitive.services.signatures import signature_create
from tests.factories import LanguageModelFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_the_execution_page_shows_steps_lm_calls_tokens_and_errors(client, local_lm):
    owner = UserFactory()
    lm = LanguageModelFactory(api_base=local_lm.url)
    signature = signature_create(owner=owner, name="qa", spec="question: str -> answer: str")
    module_create(owner=owner, name="qa", type="chain_of_thought", signature=signature, lm=lm)
    pipeline = {"steps": [{"id": "first", "module": "qa"},
                          {"id": "second", "module": "qa", "inputs": {"question": "$first.answer"},
                           "on_error": {"fallback": {"answer": "n/a"}}}]}
    program = program_activate(program=program_create(owner=owner, name="p", pipeline=pipeline))
    with mock.patch("cognitive.services.jobs.publishing.send_task"):
        execution = run_now(
            program_run_request(program=program, owner=owner, input={"question": "<b>What is 1 + 1?</b>"})
        )
    client.force_login(StaffFactory())

    page = client.get(reverse("admin:cognitive_execution_change", args=[execution.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert "<b>first</b>" in html and "<b>second</b>" in html
    assert "LM call · attempt 1 · <code>openai/local</code>" in html
    assert "&lt;b&gt;What is 1 + 1?&lt;/b&gt;" in html and "<b>What is 1 + 1?</b>" not in html
    child = execution.children.get(step_id="first")
    assert f"{child.metrics['total_tokens']} tokens" in html
    assert client.get(reverse("admin:cognitive_execution_change", args=[child.pk])).status_code == 200


def test_a_failed_step_shows_its_error(client):
    owner = UserFactory()
    parent = Execution.objects.create(owner=owner, input={}, status="failed",
                                      error={"type": "ExecutionFailed", "message": "step 'a' failed"})
    Execution.objects.create(owner=owner, parent=parent, step_id="a", input={}, status="failed",
                             error={"type": "LMServerError", "message": "boom"},
                             trace=[{"type": "error", "attempt": 1, "error": {"type": "LMServerError",
                                                                              "message": "boom"}}])
    client.force_login(StaffFactory())

    html = client.get(reverse("admin:cognitive_execution_change", args=[parent.pk])).content.decode()

    assert "LMServerError: boom" in html and "ExecutionFailed: step &#x27;a&#x27; failed" in html


def test_the_program_form_applies_the_compose_time_rules(client):
    owner = UserFactory()
    client.force_login(StaffFactory())
    data = {"name": "p", "description": "", "variables": "{}", "owner": owner.pk,
            "pipeline": '{"steps": [{"id": "a", "module": "missing"}]}'}

    response = client.post(reverse("admin:cognitive_program_add"), data)

    assert response.status_code == 200
    assert "steps[0].module: unknown module &#x27;missing&#x27;" in response.content.decode()
