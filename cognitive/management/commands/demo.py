"""``python manage.py demo``: the original design's RAG example, end to end, with its trace.

Parallel retrieval (BM25 + vector) → merge → chain-of-thought answer with a fallback, run on
the bundled local LM unless a real LM is configured through DSPEX_DEFAULT_LM /
DSPEX_DEFAULT_LM_API_BASE / DSPEX_DEFAULT_LM_KEY_ENV. The local LM is the one answering at the
default LM's address (`make serve`, `make local-lm`), else one started in-process on that
address, so the `demo-lm` row it leaves keeps working afterwards wherever the local LM runs.
Safe to run again: every row it needs is created once and brought up to date.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from cognitive.errors import ApplicationError
from cognitive.models import FINAL_STATUSES, Corpus, Execution, LanguageModel, Module, Program, ProgramStatus, Signature
from cognitive.services.corpora import corpus_create
from cognitive.services.lms import lm_save
from cognitive.services.modules import module_create
from cognitive.services.programs import program_activate, program_create, program_update
from cognitive.services.run_requests import program_run_request, run_enqueue, run_now
from cognitive.services.signatures import signature_create

DEMO_USER = "demo"
DEMO_LM = "demo-lm"
DOCUMENTS = [
    "DSPex runs DSPy programs in production on Django, Celery and Redis.",
    "A program is a pipeline of modules; steps in a parallel group run at the same time on a thread pool.",
    "Every run is recorded as an Execution: one child per step, each with its LM calls, tokens and latency.",
    "A failed step can retry, answer with a fallback value, or run a compensating step instead.",
    "Paris is the capital of France, and the Seine flows through it.",
    "Program versions store DSPy JSON state, never pickles, so a stored program cannot run code.",
]
RAG_SIGNATURE = "question: str, context: list[str] -> answer: str, confidence: float"
FALLBACK = {"answer": "I am unable to answer right now.", "confidence": 0.0}


def rag_pipeline(*, vector: bool) -> dict[str, Any]:
    search = [{"id": "keyword", "builtin": "retrieve", "corpus": "demo-docs", "method": "bm25", "k": 3,
               "inputs": {"query": "$input.question"}}]
    if vector:
        search.append({"id": "vector", "builtin": "retrieve", "corpus": "demo-docs", "method": "vector", "k": 3,
                       "inputs": {"query": "$input.question"}})
    return {
        "steps": [
            {"id": "search", "parallel": search},
            {"id": "merge", "builtin": "merge", "k": 4,
             "inputs": {"lists": [f"${step['id']}.passages" for step in search]}},
            {"id": "answer", "module": "rag_qa", "retries": 1, "on_error": {"fallback": FALLBACK},
             "inputs": {"question": "$input.question", "context": "$merge.passages"}},
        ],
        "return": "$answer",
    }


def local_lm_answers(api_base: str) -> bool:
    """Whether the bundled local LM (not just anything) is serving at `api_base`."""
    health = api_base.rstrip("/").removesuffix("/v1") + "/health"
    try:
        with urllib.request.urlopen(health, timeout=2) as response:  # noqa: S310 (the configured LM base)
            return response.headers.get("Server", "").startswith("local_lm/") and response.status == 200
    except (OSError, ValueError):
        return False


class Command(BaseCommand):
    help = "Run the RAG example (parallel retrieval → merge → chain of thought) and print its answer and trace."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--question", default="What is the capital of France?")
        parser.add_argument(
            "--inline", action="store_true", help="run in this process instead of through the queue and a worker"
        )
        parser.add_argument("--no-optimization", action="store_true", help="skip the optimization act")

    def handle(self, *args: Any, **options: Any) -> None:
        question = {"question": options["question"]}
        with ExitStack() as stack:
            api_base = self._lm_endpoint(stack)
            try:
                program = self._setup(api_base)
                if options["inline"]:
                    execution = run_now(program_run_request(program=program, owner=program.owner, input=question))
                else:
                    execution = self._run_queued(program, question, stack)
            except ApplicationError as exc:
                raise CommandError(f"{exc.message} {exc.extra or ''}".strip()) from exc
            self._report(options["question"], execution)
            if not options["no_optimization"]:
                self._optimize(program, options["inline"])

    def _run_queued(self, program: Program, question: dict[str, Any], stack: ExitStack) -> Execution:
        """The production path: a durable row, its id on the broker, a real Celery worker process."""
        execution, _ = run_enqueue(program_run_request(program=program, owner=program.owner, input=question))
        self.stdout.write(f"Queued execution {execution.pk} on {settings.CELERY_BROKER_URL.split('@')[-1]}")
        # No -Q: a worker consumes every queue the project routes to, as `celery -A dspex_site worker` does.
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "--quiet", "-A", "dspex_site", "worker", "--pool=threads",
             "--concurrency=4", "--loglevel=WARNING", "--without-gossip", "--without-mingle"],
            cwd=settings.BASE_DIR,
        )
        stack.callback(self._stop, worker)
        self.stdout.write(f"Started a Celery worker (pid {worker.pid}); waiting for it to finish the run…")
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            execution.refresh_from_db()
            if execution.status in FINAL_STATUSES:
                return execution
            if worker.poll() is not None:
                raise CommandError(f"the worker exited with code {worker.returncode}")
            time.sleep(0.2)
        raise CommandError(f"execution {execution.pk} did not finish in 180 s (status {execution.status})")

    def _optimize(self, program: Program, inline: bool) -> None:
        from cognitive.demo.optimization import report, run_optimization

        lm = LanguageModel.objects.get(name=DEMO_LM)
        run = run_optimization(owner=program.owner, lm=lm, write=self.stdout.write, inline=inline)
        report(run, self.stdout.write)

    @staticmethod
    def _stop(worker: subprocess.Popen) -> None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()

    # -- setup

    def _real_lm_configured(self) -> bool:
        return settings.DSPEX_DEFAULT_LM != "openai/local"

    def _lm_endpoint(self, stack: ExitStack) -> str:
        base = settings.DSPEX_DEFAULT_LM_API_BASE
        if self._real_lm_configured():
            self.stdout.write(f"Using the configured LM {settings.DSPEX_DEFAULT_LM} at {base}")
            return base
        if local_lm_answers(base):
            self.stdout.write(f"Using the local LM already running at {base}")
            return base
        from local_lm.server import LocalLMServer

        address = urlsplit(base)
        try:
            server = stack.enter_context(LocalLMServer(host=address.hostname or "", port=address.port or 80,
                                                       latency_ms=50))
        except (ValueError, OSError) as exc:
            raise CommandError(
                f"cannot start the local LM at {base} (DSPEX_DEFAULT_LM_API_BASE): {exc}; free that port, "
                "start `make local-lm`, or point DSPEX_DEFAULT_LM_API_BASE at a free loopback port"
            ) from exc
        self.stdout.write(f"Started the local LM at {server.url} (in-process, loopback only; "
                          "`make serve` or `make local-lm` serves it afterwards)")
        return server.url

    def _setup(self, api_base: str) -> Program:
        owner, _ = get_user_model().objects.get_or_create(username=DEMO_USER)
        local = not self._real_lm_configured()
        embedding_model = "openai/local-embed" if local else os.environ.get("DSPEX_DEMO_EMBEDDING_MODEL", "")
        lm = LanguageModel.objects.filter(name=DEMO_LM).first() or LanguageModel(name=DEMO_LM)
        lm = lm_save(
            lm=lm,
            model="openai/local" if local else settings.DSPEX_DEFAULT_LM,
            api_base=api_base,
            api_key_env="" if local else settings.DSPEX_DEFAULT_LM_KEY_ENV,
            embedding_model=embedding_model,
            params={"timeout": 30},
        )
        signature = Signature.objects.filter(owner=owner, name="rag").first() or signature_create(
            owner=owner, name="rag", spec=RAG_SIGNATURE,
            instructions="Answer the question from the context; say how confident you are (0 to 1).",
        )
        if not Module.objects.filter(owner=owner, name="rag_qa").exists():
            module_create(owner=owner, name="rag_qa", type="chain_of_thought", signature=signature, lm=lm)
        if not Corpus.objects.filter(owner=owner, name="demo-docs").exists():
            corpus_create(owner=owner, name="demo-docs", documents=DOCUMENTS, embedding_lm=lm)
        pipeline = rag_pipeline(vector=bool(embedding_model))
        program = Program.objects.filter(owner=owner, name="rag-demo").first()
        if program is None:
            program = program_create(owner=owner, name="rag-demo", description="The original design's RAG example.",
                                     pipeline=pipeline)
        elif program.pipeline != pipeline:
            program = program_update(program=program, pipeline=pipeline)
        if program.status == ProgramStatus.DRAFT:
            program = program_activate(program=program)
        return program

    # -- output

    def _report(self, question: str, execution: Execution) -> None:
        write = self.stdout.write
        output = execution.output if isinstance(execution.output, dict) else {}
        write("")
        write(f"Question:   {question}")
        if execution.status != "completed":
            error = execution.error or {}
            write(self.style.ERROR(f"The run is {execution.status}: {error.get('type')}: {error.get('message')}"))
        write(f"Answer:     {output.get('answer')}")
        write(f"Confidence: {output.get('confidence')}")
        write("")
        write(f"Trace of execution {execution.pk} ({execution.status}, {execution.duration_ms or 0} ms):")
        for child in execution.children.order_by("attempt", "created_at"):
            self._report_step(child)
        metrics = execution.metrics or {}
        write(
            f"Total: {metrics.get('steps', 0)} steps, {metrics.get('lm_calls', 0)} LM call(s), "
            f"{metrics.get('prompt_tokens', 0)} prompt + {metrics.get('completion_tokens', 0)} completion tokens, "
            f"cost ${metrics.get('cost', 0):.6f}, LM time {metrics.get('lm_latency_ms', 0)} ms"
        )
        write(f"Admin: /admin/cognitive/execution/{execution.pk}/change/   API: GET /api/executions/{execution.pk}/")

    def _report_step(self, child: Execution) -> None:
        write = self.stdout.write
        metrics = child.metrics or {}
        detail = metrics.get("kind", "")
        if child.module_id:
            detail = f"module {child.module.name} ({child.module.type})"
        recovered = f", recovered by {metrics['recovered_by']}" if metrics.get("recovered_by") else ""
        write(f"  {child.step_id:<9} {detail:<38} {child.status:<9} {child.duration_ms or 0:>5} ms{recovered}")
        for event in child.trace:
            if event.get("type") == "retrieval":
                write(f"      retrieve {event['method']} from '{event['corpus']}': {event['found']} passages")
            elif event.get("type") == "lm_call":
                error = event.get("error")
                outcome = f"failed: {error['type']}" if error else "ok"
                write(
                    f"      LM call {event['model']}: {event['prompt_tokens']} prompt + "
                    f"{event['completion_tokens']} completion tokens, {event['latency_ms']} ms, {outcome}"
                )
            elif event.get("type") == "prediction" and "reasoning" in event.get("extra", {}):
                write(f"      reasoning: {event['extra']['reasoning'][:100]}")
        if child.step_id == "merge" and isinstance(child.output, dict):
            for passage in child.output.get("passages", []):
                write(f"      · {passage[:90]}")
