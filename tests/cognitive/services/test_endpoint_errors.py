"""An LM or embedding endpoint that cannot be reached is named, URL and all, in the run's error."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cognitive.errors import RetryableError
from cognitive.models import ExecutionStatus
from cognitive.services import retrieval
from cognitive.services.corpora import corpus_create
from cognitive.services.modules import module_create
from cognitive.services.programs import program_activate, program_create
from cognitive.services.run_requests import program_run_request, run_now
from cognitive.services.signatures import signature_create
from tests.factories import LanguageModelFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]
REPO = Path(__file__).resolve().parents[3]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_a_chat_lm_that_cannot_be_reached_is_named_with_its_url(user):
    url = closed_port_url()
    lm = LanguageModelFactory(name="gone-lm", api_base=url)
    signature = signature_create(owner=user, name="qa", spec="question: str -> answer: str")
    module_create(owner=user, name="qa", type="predict", signature=signature, lm=lm)
    program = program_activate(
        program=program_create(owner=user, name="p", pipeline={"steps": [{"id": "qa", "module": "qa"}]})
    )

    execution = run_now(program_run_request(program=program, owner=user, input={"question": "q"}))

    assert execution.status == ExecutionStatus.PENDING  # a lost connection is retried later
    assert f"LM 'gone-lm' at {url}" in execution.error["message"], execution.error
    step_errors = [e for e in execution.children.get().trace if e.get("type") == "error"]
    assert step_errors and url in step_errors[0]["error"]["message"]


def test_an_embedding_endpoint_that_cannot_be_reached_is_named_with_its_url(user):
    url = closed_port_url()
    lm = LanguageModelFactory(api_base=url, embedding_model="openai/local-embed")
    corpus_create(owner=user, name="docs", documents=["Paris is in France."], embedding_lm=lm)

    with pytest.raises(RetryableError) as error:
        retrieval.retrieve(owner=user, corpus="docs", query="Paris", method="vector", k=1)

    assert f"cannot reach embedding model 'openai/local-embed' at {url}/embeddings" in error.value.message


def test_openai_compatible_embeddings_do_not_import_litellm():
    # Importing LiteLLM took 9 of the demo's 9.5 s of vector retrieval, in every new worker process.
    script = (
        "import os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'dspex_site.settings'; import django; django.setup()\n"
        "from local_lm.server import LocalLMServer\n"
        "from cognitive.engine.retrieval import embed_texts\n"
        "from cognitive.models import LanguageModel\n"
        "with LocalLMServer() as server:\n"
        "    row = LanguageModel(name='x', model='openai/local', api_base=server.url,\n"
        "                        embedding_model='openai/local-embed')\n"
        "    vectors = embed_texts(row, ['red apples', 'green apples'])\n"
        "print(len(vectors), len(vectors[0]), 'litellm' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "DEBUG": "1"})

    assert result.returncode == 0, result.stderr
    count, dims, imported = result.stdout.split()
    assert (int(count), int(dims) > 0, imported) == (2, True, "False")
