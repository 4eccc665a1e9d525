from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from cognitive.models import Execution, OptimizationRun, Program, ProgramStatus


@pytest.mark.django_db(transaction=True)  # the parallel retrieval reads documents from worker threads
def test_demo_runs_the_rag_example_and_prints_its_trace(monkeypatch):
    monkeypatch.delenv("DSPEX_DEFAULT_LM_API_BASE", raising=False)
    out = io.StringIO()

    call_command("demo", "--inline", stdout=out)
    call_command("demo", "--inline", "--question", "What is 2 + 3?", stdout=out)  # idempotent: same rows, a second run

    text = out.getvalue()
    assert "Started the local LM at http://127.0.0.1:" in text
    answers = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Answer:")]
    assert len(answers) == 2 and all(answers) and "The run is" not in text
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
