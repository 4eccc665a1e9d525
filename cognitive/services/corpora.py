"""Corpora and their documents. Documents are embedded as they are added when the embedding model
answers; when it does not, they are stored anyway and embedded by the first vector query."""

from __future__ import annotations

import logging
import re
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max

from cognitive.engine.retrieval import embed_texts, embedder_key
from cognitive.errors import ApplicationError, Conflict, InvalidInput, RetryableError
from cognitive.models import Corpus, Document, LanguageModel
from cognitive.services import retrieval
from cognitive.services.common import save_unique

logger = logging.getLogger(__name__)

MAX_DOCUMENTS_PER_REQUEST = 1000
MAX_DOCUMENT_CHARS = 20_000
MAX_NAME_CHARS = 200


def documents_validate(documents: Any) -> list[str]:
    """A non-empty list of non-empty strings, within the limits; each problem names its index."""
    if not isinstance(documents, list) or not documents:
        raise InvalidInput("documents must be a non-empty list of strings", {"path": "documents"})
    if len(documents) > MAX_DOCUMENTS_PER_REQUEST:
        raise InvalidInput(
            f"at most {MAX_DOCUMENTS_PER_REQUEST} documents per request, got {len(documents)}",
            {"path": "documents", "limit": MAX_DOCUMENTS_PER_REQUEST},
        )
    for index, text in enumerate(documents):
        path = f"documents[{index}]"
        if not isinstance(text, str):
            raise InvalidInput(f"{path} must be a string", {"path": path})
        if not text.strip():
            raise InvalidInput(f"{path} is empty", {"path": path})
        if len(text) > MAX_DOCUMENT_CHARS:
            raise InvalidInput(
                f"{path} is longer than {MAX_DOCUMENT_CHARS} characters", {"path": path, "limit": MAX_DOCUMENT_CHARS}
            )
        if "\x00" in text:
            raise InvalidInput(f"{path} contains a NUL character", {"path": path})
    return documents


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name must be a non-empty string", {"path": "name"})
    if len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"name is longer than {MAX_NAME_CHARS} characters", {"path": "name"})
    return name


def _embed_or_defer(corpus: Corpus, texts: list[str]) -> tuple[str, list[list[float]] | None]:
    """(embedder key, vectors), or no vectors when the embedding model cannot embed them right now."""
    lm_row = retrieval.corpus_embedding_lm(corpus)
    try:
        return embedder_key(lm_row), embed_texts(lm_row, texts)
    except (ApplicationError, RetryableError) as exc:
        logger.warning("corpus '%s': storing %d documents unembedded: %s", corpus.name, len(texts), exc)
        return embedder_key(lm_row), None


def _documents(corpus: Corpus, texts: list[str], vectors: list[list[float]] | None, start: int) -> list[Document]:
    pairs = zip(texts, vectors if vectors is not None else [None] * len(texts), strict=True)
    rows = [Document(corpus=corpus, position=start + i, text=text, embedding=v) for i, (text, v) in enumerate(pairs)]
    return Document.objects.bulk_create(rows, batch_size=500)


def corpus_create(
    *,
    owner: AbstractBaseUser,
    name: str,
    documents: list[str],
    embedding_lm: LanguageModel | None = None,
) -> Corpus:
    name = _check_name(name)
    texts = documents_validate(documents)
    if Corpus.objects.filter(owner=owner, name=name).exists():  # before spending an embedding call on it
        raise Conflict(f"you already have a corpus named '{name}'", {"field": "name"})
    corpus = Corpus(owner=owner, name=name, embedding_lm=embedding_lm)
    embedded_with, vectors = _embed_or_defer(corpus, texts)
    corpus.embedded_with = embedded_with if vectors is not None else ""
    with transaction.atomic():
        save_unique(corpus, what="you already have a corpus")
        _documents(corpus, texts, vectors, start=0)
    return corpus


def corpus_add_documents(*, corpus: Corpus, documents: list[str]) -> Corpus:
    """Append documents after the existing ones, in the order given."""
    texts = documents_validate(documents)
    embedded_with, vectors = _embed_or_defer(corpus, texts)
    with transaction.atomic():
        locked = Corpus.objects.select_for_update().get(pk=corpus.pk)
        if locked.embedded_with not in ("", embedded_with):
            # The stored vectors came from another embedder: the next vector query re-embeds them all.
            vectors = None
        if vectors is not None:
            locked.embedded_with = embedded_with
        last = Document.objects.filter(corpus=locked).aggregate(last=Max("position"))["last"]
        _documents(locked, texts, vectors, start=0 if last is None else last + 1)
        locked.save(update_fields=["embedded_with", "updated_at"])  # updated_at re-keys the cached indexes
    return locked


def corpus_search(*, corpus: Corpus, query: str, method: str, k: int) -> list[str]:
    """`corpus` comes from `selectors.corpus_list` (it needs `document_count`)."""
    return retrieval.search(corpus=corpus, query=query, method=method, k=k)


def corpus_delete(*, corpus: Corpus) -> None:
    corpus_id = corpus.pk
    corpus.delete()
    transaction.on_commit(lambda: retrieval.forget_corpus(corpus_id))


def documents_from_text(text: str) -> list[str]:
    """Documents typed into one box: separated by blank lines if there are any, else one per line."""
    text = text.replace("\r\n", "\n").strip()
    parts = re.split(r"\n[ \t]*\n", text) if re.search(r"\n[ \t]*\n", text) else text.split("\n")
    return [part.strip() for part in parts if part.strip()]
