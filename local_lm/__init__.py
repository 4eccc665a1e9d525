"""Local OpenAI-compatible LM server for offline tests, benchmarks and demos.

Importing this package never imports Django, so ``python -m local_lm`` and plain pytest runs work
without settings; ``local_lm.apps.LocalLmConfig`` makes it an installable Django app for the
``run_local_lm`` management command.
"""

from local_lm.responder import oracle_answer, oracle_choice, stable_hash
from local_lm.server import LocalLMServer, ServerConfig

__all__ = ["LocalLMServer", "ServerConfig", "oracle_answer", "oracle_choice", "stable_hash"]
