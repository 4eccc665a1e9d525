"""Embeddings over the OpenAI embeddings API, for `openai/...` models (OpenAI and compatible servers).

`dspy.Embedder` with a model name goes through LiteLLM, and the first call in a process imports
it: 9 s of a demo's 9.5 s vector retrieval (measured with cProfile: `litellm/__init__` under
`dspy.clients.embedding._get_litellm`), paid again by every new worker process. Chat calls do not
use LiteLLM, so for the common OpenAI-compatible case one HTTP request through httpx does the
job; other providers still go through `dspy.Embedder`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import httpx

from cognitive.errors import ExecutionFailed, RateLimited, RetryableError

OPENAI_PREFIX = "openai/"
OPENAI_API_BASE = "https://api.openai.com/v1"
BATCH_SIZE = 200  # texts per request, as dspy.Embedder sends them (OpenAI accepts up to 2048)

_clients: dict[str, httpx.Client] = {}
_clients_lock = threading.Lock()


def handles(model: str) -> bool:
    return model.startswith(OPENAI_PREFIX)


def _client(api_base: str) -> httpx.Client:
    # One pooled client per endpoint: a vector query per run would otherwise pay a TLS handshake each time.
    with _clients_lock:
        client = _clients.get(api_base)
        if client is None:
            client = _clients[api_base] = httpx.Client(base_url=api_base)
        return client


def embed(*, model: str, texts: Sequence[str], api_base: str, api_key: str, timeout: float) -> list[list[float]]:
    """One vector per text, in order. Raises RateLimited / RetryableError (transient) or ExecutionFailed."""
    vectors: list[list[float]] = []
    for start in range(0, len(texts), BATCH_SIZE):
        batch = texts[start : start + BATCH_SIZE]
        vectors += _embed_batch(model=model, texts=batch, api_base=api_base, api_key=api_key, timeout=timeout)
    return vectors


def _embed_batch(*, model: str, texts: Sequence[str], api_base: str, api_key: str, timeout: float) -> list[list[float]]:
    base = (api_base or OPENAI_API_BASE).rstrip("/")
    url = f"{base}/embeddings"
    name = model.removeprefix(OPENAI_PREFIX)
    try:
        response = _client(base).post(
            "/embeddings",
            json={"model": name, "input": list(texts), "encoding_format": "float"},
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )
    except httpx.TimeoutException as exc:
        raise RetryableError(f"embedding model '{model}' at {url} timed out after {timeout:g} s: "
                             f"{type(exc).__name__}", kind="embedding_unavailable") from exc
    except httpx.TransportError as exc:
        raise RetryableError(f"cannot reach embedding model '{model}' at {url}: {exc}",
                             kind="embedding_unavailable") from exc
    if response.status_code != 200:
        raise _status_error(response, model, url)
    return _vectors(response, model, len(texts))


def _status_error(response: httpx.Response, model: str, url: str) -> Exception:
    status = response.status_code
    detail = f"embedding model '{model}' at {url} answered {status}: {_error_message(response)}"[:1000]
    if status == 429:
        return RateLimited(detail, retry_after=_retry_after(response))
    if status >= 500 or status == 408:
        return RetryableError(detail, retry_after=_retry_after(response), kind="embedding_unavailable")
    return ExecutionFailed(detail, {"model": model, "status": status})


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return response.text[:200]
    message = error.get("message") if isinstance(error, dict) else error
    return str(message or response.reason_phrase)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        seconds = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return seconds if 0 <= seconds < 86_400 else None


def _vectors(response: httpx.Response, model: str, count: int) -> list[list[float]]:
    try:
        data: list[dict[str, Any]] = response.json()["data"]
        ordered = sorted(data, key=lambda item: item.get("index", 0))
        vectors = [[float(x) for x in item["embedding"]] for item in ordered]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ExecutionFailed(f"embedding model '{model}' answered something that is not an embeddings response",
                              {"model": model}) from exc
    if len(vectors) != count:
        raise ExecutionFailed(f"embedding model '{model}' returned {len(vectors)} vectors for {count} texts",
                              {"model": model})
    return vectors
