"""Searching a Corpus: the `retrieve` pipeline step and the corpus search endpoint.

The database side of retrieval; the ranking is the engine's (cognitive/engine/retrieval.py).
Documents keep their embeddings in the database, so a query embeds only itself. The vectors are a
derived index: this module fills in the missing ones (the embedding model was down when they were
added, or the corpus now embeds with another model) the first time a vector query needs them.
Each process keeps the indexes it built, keyed so that a changed corpus gets new ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

from cognitive.engine.retrieval import KeywordIndex, VectorIndex, check_search, embed_texts, embedder_key
from cognitive.errors import InvalidInput
from cognitive.lru import LRUCache
from cognitive.models import Corpus, Document, LanguageModel
from cognitive.selectors import corpus_by_name
from cognitive.services.lms import lm_default

logger = logging.getLogger(__name__)

_CACHED_CORPORA = 32


def corpus_embedding_lm(corpus: Corpus) -> LanguageModel:
    return corpus.embedding_lm if corpus.embedding_lm_id else lm_default()


# --------------------------------------------------------------------------- per-process indexes


_keyword_indexes: LRUCache[KeywordIndex] = LRUCache(_CACHED_CORPORA)
_vector_indexes: LRUCache[VectorIndex] = LRUCache(_CACHED_CORPORA)


def _keyword_index(corpus: Corpus) -> KeywordIndex:
    key = (corpus.pk, corpus.document_count, corpus.updated_at)
    index = _keyword_indexes.get(key)
    if index is None:
        texts = list(Document.objects.filter(corpus_id=corpus.pk).order_by("position").values_list("text", flat=True))
        index = KeywordIndex(texts)
        _keyword_indexes.put(key, index)
    return index


def _vector_index(corpus: Corpus, lm_row: LanguageModel) -> VectorIndex:
    embedded_with = embedder_key(lm_row)
    key = (corpus.pk, corpus.document_count, corpus.updated_at, embedded_with)
    index = _vector_indexes.get(key)
    if index is None:
        index = VectorIndex(*_embedded_documents(corpus, lm_row, embedded_with))
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


def forget_corpus(corpus_id: Any) -> None:
    """Drop a corpus's cached indexes (it was deleted); changed corpora are re-keyed on their own."""
    _keyword_indexes.drop_where(lambda key: key[0] == corpus_id)
    _vector_indexes.drop_where(lambda key: key[0] == corpus_id)


# --------------------------------------------------------------------------- entry points


def corpus_exists(*, owner: Any, name: str) -> bool:
    return corpus_by_name(owner=owner, name=name) is not None


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


def corpus_retriever(owner: Any) -> Callable[..., list[str]]:
    """What a pipeline's `retrieve` steps call (`PipelineEnv.retrieve`): the owner's corpora.

    `owner` is a user or a user id.
    """

    def run(*, corpus: str, method: str, query: str, k: int) -> list[str]:
        return retrieve(owner=owner, corpus=corpus, method=method, query=query, k=k)

    return run
