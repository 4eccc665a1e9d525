from __future__ import annotations

import io
import socket

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from cognitive.models import Execution, LanguageModel, OptimizationRun, Program, ProgramStatus
from cognitive.services.run_requests import program_run_request, run_now
from local_lm.server import LocalLMServer
from tests.integration.harness import free_port


@pytest.fixture
def default_lm_base(settings) -> str:
    """The default LM's address, on a free port (8765 may be taken by a developer's `make serve`)."""
    settings.DSPEX_DEFAULT_LM = "openai/local"
    settings.DSPEX_DEFAULT_LM_API_BASE = f"http://127.0.0.1:{free_port()}/v1"
    return settings.DSPEX_DEFAULT_LM_API_BASE


@pytest.mark.django_db(transaction=True)  # the parallel retrieval reads documents from worker threads
def test_demo_runs_the_rag_example_and_prints_its_trace(default_lm_base):
    out = io.StringIO()

    call_command("demo", "--inline", stdout=out)
    call_command("demo", "--inline", "--question", "What is 2 + 3?", stdout=out)  # idempotent: same rows, a second run

    text = out.getvalue()
    assert f"Started the local LM at {default_lm_base}" in text
    answers = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Answer:")]
    assert answers[0] == "Paris" and answers[1] and "The run is" not in text  # Paris: from the retrieved passage
    for step in ("keyword", "vector", "merge", "answer"):
        assert f"  {step} " in text
    assert "LM call openai/local:" in text and "completion tokens" in text
    program = Program.objects.get(name="rag-demo")
    assert program.status == ProgramStatus.ACTIVE
    runs = Execution.objects.filter(program=program, parent__isnull=True)
    assert [run.status for run in runs] == ["completed", "completed"]
    assert all(run.children.count() == 4 for run in runs)
    # The second act: an optimization that beats its baseline and is promoted, then one that cannot.
    assert "Baseline (val):" in text and "Optimized (val): 1.00" in text
    first, second = OptimizationRun.objects.filter(program__name="arithmetic-demo").order_by("created_at")
    assert first.status == second.status == "succeeded"
    assert first.final_score > first.baseline_score and first.promoted
    assert not second.promoted and "kept for review" in text


@pytest.mark.django_db(transaction=True)
def test_the_demo_program_still_runs_after_the_demo_wherever_the_local_lm_serves(default_lm_base):
    call_command("demo", "--inline", "--no-optimization", stdout=io.StringIO())
    program = Program.objects.get(name="rag-demo")
    assert LanguageModel.objects.get(name="demo-lm").api_base == default_lm_base  # not a port that is gone

    port = int(default_lm_base.rsplit(":", 1)[1].removesuffix("/v1"))
    with LocalLMServer(port=port):  # what `make serve` / `make local-lm` run at the default LM's address
        out = io.StringIO()
        call_command("demo", "--inline", "--no-optimization", stdout=out)
        later = run_now(program_run_request(
            program=program, owner=program.owner, input={"question": "What is the capital of France?"}
        ))

    assert f"Using the local LM already running at {default_lm_base}" in out.getvalue()
    assert later.status == "completed", later.error
    assert later.output["answer"] == "Paris"


@pytest.mark.django_db
def test_a_taken_default_lm_port_is_reported_with_what_to_do(default_lm_base):
    port = int(default_lm_base.rsplit(":", 1)[1].removesuffix("/v1"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        with pytest.raises(CommandError, match=f"cannot start the local LM at {default_lm_base}"):
            call_command("demo", "--inline", stdout=io.StringIO())
