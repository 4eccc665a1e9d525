"""Pytest fixtures serving the local OpenAI-compatible LM (load with ``pytest_plugins = ["tests.fixtures_local_lm"]``).

``local_lm`` gives each test its own server, so knobs and counters never leak between tests.
``local_lm_session`` is shared by the whole run: cheaper, but a test that calls ``configure()`` on it
must restore the knobs itself, and counters are only meaningful after ``reset_stats()``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# LiteLLM and DSPy otherwise try to download model price maps on first use: seconds of DNS failures offline.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from local_lm.server import LocalLMServer


@pytest.fixture
def local_lm() -> Iterator[LocalLMServer]:
    server = LocalLMServer(port=0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def local_lm_session() -> Iterator[LocalLMServer]:
    server = LocalLMServer(port=0).start()
    try:
        yield server
    finally:
        server.stop()
