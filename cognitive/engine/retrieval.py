"""Ranking passages: keyword ranking with BM25 and vector ranking with DSPy embeddings.

The engine only computes here. The caller (cognitive/services/retrieval.py) loads a corpus's texts
and stored vectors, builds and caches the indexes, and stores the vectors this module embeds.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from typing import Any, Protocol

import dspy
import numpy as np
from rank_bm25 import BM25Okapi

from cognitive.engine import embeddings
from cognitive.errors import ExecutionFailed, InvalidInput, RateLimited, RetryableError

RETRIEVAL_METHODS = ("bm25", "vector")
MAX_K = 100
DEFAULT_EMBEDDING_TIMEOUT_S = 30.0
_WORD = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def check_search(*, query: Any, method: Any, k: Any) -> None:
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("query must be a non-empty string", {"path": "query"})
    if method not in RETRIEVAL_METHODS:
        raise InvalidInput(f"method must be one of: {', '.join(RETRIEVAL_METHODS)}", {"path": "method"})
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidInput(f"k must be an integer from 1 to {MAX_K}", {"path": "k"})


# --------------------------------------------------------------------------- embeddings


class EmbeddingModelConfig(Protocol):
    """What embedding reads from a `cognitive.models.LanguageModel` row."""

    model: str
    embedding_model: str
    api_base: str
    api_key_env: str
    params: dict[str, Any]


def embedder_key(config: EmbeddingModelConfig) -> str:
    """What makes two embeddings comparable: the same model behind the same endpoint."""
    return f"{config.embedding_model or config.model}@{config.api_base}"


def embed_texts(config: EmbeddingModelConfig, texts: Sequence[str]) -> list[list[float]]:
    """Embed with the config's embedding model (its chat model if it names none).

    `openai/...` models go straight to the embeddings API (see `cognitive.engine.embeddings`),
    others through `dspy.Embedder`. Raises RateLimited / RetryableError when trying again later
    may help, ExecutionFailed otherwise.
    """
    if not texts:
        return []
    model = config.embedding_model or config.model
    api_key = (os.environ.get(config.api_key_env) if config.api_key_env else None) or "local"
    timeout = float(config.params.get("timeout") or DEFAULT_EMBEDDING_TIMEOUT_S)
    if embeddings.handles(model):
        raw: Any = embeddings.embed(model=model, texts=texts, api_base=config.api_base, api_key=api_key,
                                    timeout=timeout)
    else:
        embedder = dspy.Embedder(model, api_base=config.api_base or None, api_key=api_key, timeout=timeout,
                                 caching=False)
        try:
            raw = embedder(list(texts))
        except Exception as exc:
            raise _embedding_error(exc, model) from exc
    vectors = np.asarray(raw, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(texts) or not np.isfinite(vectors).all():
        raise ExecutionFailed(
            f"embedding model '{model}' returned unusable vectors", {"model": model, "shape": list(vectors.shape)}
        )
    return vectors.tolist()


def _embedding_error(exc: Exception, model: str) -> Exception:
    status = getattr(exc, "status_code", None)
    detail = f"embedding model '{model}' failed: {type(exc).__name__}: {exc}"[:1000]
    if status == 429:
        return RateLimited(detail, retry_after=_retry_after(exc))
    if (isinstance(status, int) and (status >= 500 or status == 408)) or isinstance(exc, TimeoutError | OSError):
        return RetryableError(detail, kind="embedding_unavailable")
    return ExecutionFailed(detail, {"model": model})


def _retry_after(exc: Exception) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        return float(headers.get("retry-after"))
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- keyword ranking


class _BM25(BM25Okapi):
    """BM25Okapi with Lucene's idf, log(1 + (N - n + 0.5) / (n + 0.5)).

    Okapi's idf is zero or negative for a word in half the documents or more, so in a small corpus the
    one document that matches can score no better than the rest; Lucene's is always positive.
    """

    def _calc_idf(self, nd: dict[str, int]) -> None:
        for word, freq in nd.items():
            self.idf[word] = math.log(1 + (self.corpus_size - freq + 0.5) / (freq + 0.5))


class KeywordIndex:
    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.bm25 = _BM25([tokenize(text) for text in texts]) if texts else None

    def search(self, query: str, k: int) -> list[str]:
        """The top `k` texts sharing a word with the query, best first."""
        terms = [term for term in tokenize(query) if self.bm25 is not None and term in self.bm25.idf]
        if not terms:
            return []
        scores = self.bm25.get_scores(terms)
        ranked = np.argsort(-scores, kind="stable")[:k]
        return [self.texts[i] for i in ranked if scores[i] > 0]


# --------------------------------------------------------------------------- vector ranking


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    # The same normalisation as dspy.retrievers.Embeddings, so scores are cosine similarities.
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-10)


class VectorIndex:
    def __init__(self, texts: list[str], vectors: list[list[float]]) -> None:
        self.texts = texts
        self.matrix = _unit_rows(np.asarray(vectors, dtype=np.float32)) if texts else None

    def search(self, query_vector: list[float], k: int) -> list[str]:
        """The `k` texts closest to the query's vector, best first."""
        if self.matrix is None:
            return []
        query = _unit_rows(np.asarray([query_vector], dtype=np.float32))[0]
        if query.shape[0] != self.matrix.shape[1]:
            raise ExecutionFailed(
                "the query embedding and the stored embeddings have different sizes",
                {"query_dims": int(query.shape[0]), "document_dims": int(self.matrix.shape[1])},
            )
        scores = self.matrix @ query
        return [self.texts[i] for i in np.argsort(-scores, kind="stable")[:k]]
