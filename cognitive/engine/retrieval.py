"""Retrieval over a Corpus: keyword ranking with BM25 and vector ranking with DSPy embeddings.

Documents keep their embeddings in the database, so a query embeds only itself. The vectors are a
derived index: this module fills in the missing ones (the embedding model was down when they were
added, or the corpus now embeds with another model) the first time a vector query needs them.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Sequence
from typing import Any

import dspy
import numpy as np
from django.db import transaction
from rank_bm25 import BM25Okapi

from cognitive.engine import embeddings
from cognitive.errors import ExecutionFailed, InvalidInput, RateLimited, RetryableError
from cognitive.lru import LRUCache
from cognitive.models import Corpus, Document, LanguageModel
from cognitive.selectors import corpus_by_name
from cognitive.services.lms import lm_default

logger = logging.getLogger(__name__)

RETRIEVAL_METHODS = ("bm25", "vector")
MAX_K = 100
DEFAULT_EMBEDDING_TIMEOUT_S = 30.0
_CACHED_CORPORA = 32
_WORD = re.compile(r"\w+")

def tokenize(text: str) -> list[str]:
    return _WORD.findall(text.lower())


# --------------------------------------------------------------------------- embeddings


def corpus_embedding_lm(corpus: Corpus) -> LanguageModel:
    return corpus.embedding_lm if corpus.embedding_lm_id else lm_default()


def embedder_key(lm_row: LanguageModel) -> str:
    """What makes two embeddings comparable: the same model behind the same endpoint."""
    return f"{lm_row.embedding_model or lm_row.model}@{lm_row.api_base}"


def embed_texts(lm_row: LanguageModel, texts: Sequence[str]) -> list[list[float]]:
    """Embed with the row's embedding model (its chat model if it names none).

    `openai/...` models go straight to the embeddings API (see `cognitive.engine.embeddings`),
    others through `dspy.Embedder`. Raises RateLimited / RetryableError when trying again later
    may help, ExecutionFailed otherwise.
    """
    if not texts:
        return []
    model = lm_row.embedding_model or lm_row.model
    api_key = (os.environ.get(lm_row.api_key_env) if lm_row.api_key_env else None) or "local"
    timeout = float(lm_row.params.get("timeout") or DEFAULT_EMBEDDING_TIMEOUT_S)
    if embeddings.handles(model):
        raw: Any = embeddings.embed(model=model, texts=texts, api_base=lm_row.api_base, api_key=api_key,
                                    timeout=timeout)
    else:
        embedder = dspy.Embedder(model, api_base=lm_row.api_base or None, api_key=api_key, timeout=timeout,
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


class _KeywordIndex:
    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.bm25 = _BM25([tokenize(text) for text in texts]) if texts else None

    def search(self, query: str, k: int) -> list[str]:
        terms = [term for term in tokenize(query) if self.bm25 is not None and term in self.bm25.idf]
        if not terms:
            return []
        scores = self.bm25.get_scores(terms)
        ranked = np.argsort(-scores, kind="stable")[:k]
        return [self.texts[i] for i in ranked if scores[i] > 0]


_keyword_indexes: LRUCache[_KeywordIndex] = LRUCache(_CACHED_CORPORA)


def _keyword_index(corpus: Corpus) -> _KeywordIndex:
    key = (corpus.pk, corpus.document_count, corpus.updated_at)
    index = _keyword_indexes.get(key)
    if index is None:
        texts = list(Document.objects.filter(corpus_id=corpus.pk).order_by("position").values_list("text", flat=True))
        index = _KeywordIndex(texts)
        _keyword_indexes.put(key, index)
    return index


# --------------------------------------------------------------------------- vector ranking


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    # The same normalisation as dspy.retrievers.Embeddings, so scores are cosine similarities.
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-10)


class _VectorIndex:
    def __init__(self, texts: list[str], vectors: list[list[float]]) -> None:
        self.texts = texts
        self.matrix = _unit_rows(np.asarray(vectors, dtype=np.float32)) if texts else None

    def search(self, query_vector: list[float], k: int) -> list[str]:
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


_vector_indexes: LRUCache[_VectorIndex] = LRUCache(_CACHED_CORPORA)


def _vector_index(corpus: Corpus, lm_row: LanguageModel) -> _VectorIndex:
    embedded_with = embedder_key(lm_row)
    key = (corpus.pk, corpus.document_count, corpus.updated_at, embedded_with)
    index = _vector_indexes.get(key)
    if index is None:
        index = _VectorIndex(*_embedded_documents(corpus, lm_row, embedded_with))
        _vector_indexes.put(key, index)
    return index


def _embedded_documents(corpus: Corpus, lm_row: LanguageModel, embedded_with: str) -> tuple[list[str], list[Any]]:
    """Every document's text and vector, embedding (and storing) the ones that have none yet."""
    if corpus.embedded_with != embedded_with:
        with transaction.atomic():
            locked = Corpus.objects.select_for_update().get(pk=corpus.pk)
            if locked.embedded_with != embedded_with:
                logger.info("corpus %s: embedder changed to %s; re-embedding", corpus.pk, embedded_with)
                Document.objects.filter(corpus_id=corpus.pk).update(embedding=None)
                Corpus.objects.filter(pk=corpus.pk).update(embedded_with=embedded_with)
    documents = Document.objects.filter(corpus_id=corpus.pk).order_by("position")
    rows = list(documents.values_list("pk", "text", "embedding"))
    pending = [(pk, text) for pk, text, vector in rows if vector is None]
    filled: dict[Any, list[float]] = {}
    if pending:
        filled = dict(zip([pk for pk, _ in pending], embed_texts(lm_row, [text for _, text in pending]), strict=True))
        with transaction.atomic():
            # Only if nobody switched the corpus to another embedder while we were calling this one.
            if list(Corpus.objects.select_for_update().filter(pk=corpus.pk, embedded_with=embedded_with).values("pk")):
                Document.objects.bulk_update(
                    [Document(pk=pk, embedding=vector) for pk, vector in filled.items()], ["embedding"], batch_size=200
                )
    return [text for _, text, _ in rows], [vector if vector is not None else filled[pk] for pk, _, vector in rows]


# --------------------------------------------------------------------------- entry points


def corpus_exists(*, owner: Any, name: str) -> bool:
    return corpus_by_name(owner=owner, name=name) is not None


def check_search(*, query: Any, method: Any, k: Any) -> None:
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("query must be a non-empty string", {"path": "query"})
    if method not in RETRIEVAL_METHODS:
        raise InvalidInput(f"method must be one of: {', '.join(RETRIEVAL_METHODS)}", {"path": "method"})
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidInput(f"k must be an integer from 1 to {MAX_K}", {"path": "k"})


def search(*, corpus: Corpus, query: str, method: str, k: int) -> list[str]:
    """The top `k` passages of `corpus`, best first. BM25 returns only documents sharing a word with the query.

    `corpus` must carry `document_count` (see `selectors.corpus_by_name`).
    """
    check_search(query=query, method=method, k=k)
    if method == "bm25":
        return _keyword_index(corpus).search(query, k)
    lm_row = corpus_embedding_lm(corpus)
    index = _vector_index(corpus, lm_row)
    if index.matrix is None:
        return []
    return index.search(embed_texts(lm_row, [query])[0], k)


def retrieve(*, owner: Any, corpus: str, query: str, method: str, k: int) -> list[str]:
    """The `retrieve` step: search the owner's corpus called `corpus`."""
    row = corpus_by_name(owner=owner, name=corpus) if isinstance(corpus, str) else None
    if row is None:
        raise InvalidInput(f"unknown corpus '{corpus}'", {"path": "corpus", "corpus": corpus})
    return search(corpus=row, query=query, method=method, k=k)


def forget_corpus(corpus_id: Any) -> None:
    """Drop a corpus's cached indexes (it was deleted); changed corpora are re-keyed on their own."""
    _keyword_indexes.drop_where(lambda key: key[0] == corpus_id)
    _vector_indexes.drop_where(lambda key: key[0] == corpus_id)
