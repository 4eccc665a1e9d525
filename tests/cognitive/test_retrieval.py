"""Corpus services (validation, ordering, embedding on write) and the corpus admin."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from cognitive.engine.retrieval import embedder_key
from cognitive.errors import Conflict, InvalidInput
from cognitive.models import Corpus, Document
from cognitive.services import retrieval
from cognitive.services.corpora import (
    MAX_DOCUMENT_CHARS,
    MAX_DOCUMENTS_PER_REQUEST,
    corpus_add_documents,
    corpus_create,
    corpus_delete,
    documents_from_text,
)
from tests.factories import LanguageModelFactory, StaffFactory, UserFactory

pytest_plugins = ["tests.fixtures_local_lm"]
pytestmark = pytest.mark.django_db


@pytest.fixture
def embedding_lm(local_lm_session):
    return LanguageModelFactory(api_base=local_lm_session.url, embedding_model="openai/local-embed")


@pytest.fixture
def owner():
    return UserFactory()


@pytest.mark.parametrize(
    ("documents", "message", "path"),
    [
        ("one text", "documents must be a non-empty list of strings", "documents"),
        ([], "documents must be a non-empty list of strings", "documents"),
        (["fine", "also fine", 3], "documents[2] must be a string", "documents[2]"),
        (["fine", "   "], "documents[1] is empty", "documents[1]"),
        (["x" * (MAX_DOCUMENT_CHARS + 1)], f"documents[0] is longer than {MAX_DOCUMENT_CHARS}", "documents[0]"),
        (["ok", "ok", "ok", "nul\x00"], "documents[3] contains a NUL character", "documents[3]"),
        (["x"] * (MAX_DOCUMENTS_PER_REQUEST + 1), f"at most {MAX_DOCUMENTS_PER_REQUEST} documents", "documents"),
    ],
)
def test_invalid_documents_are_rejected_naming_the_index(owner, embedding_lm, documents, message, path):
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace("]", r"\]")) as error:
        corpus_create(owner=owner, name="facts", documents=documents, embedding_lm=embedding_lm)
    assert error.value.extra["path"] == path
    assert not Corpus.objects.exists()

    corpus = corpus_create(owner=owner, name="good", documents=["first"], embedding_lm=embedding_lm)
    with pytest.raises(InvalidInput) as error:
        corpus_add_documents(corpus=corpus, documents=documents)
    assert error.value.extra["path"] == path
    assert corpus.documents.count() == 1


def test_create_stores_documents_in_order_with_embeddings(owner, embedding_lm):
    corpus = corpus_create(owner=owner, name="facts", documents=["alpha", "beta", "gamma"], embedding_lm=embedding_lm)

    rows = list(corpus.documents.order_by("position").values_list("position", "text"))
    assert rows == [(0, "alpha"), (1, "beta"), (2, "gamma")]
    assert all(doc.embedding for doc in corpus.documents.all())
    assert corpus.embedded_with == embedder_key(embedding_lm)


def test_added_documents_follow_the_existing_ones(owner, embedding_lm):
    corpus = corpus_create(owner=owner, name="facts", documents=["alpha", "beta"], embedding_lm=embedding_lm)
    before = corpus.updated_at

    corpus = corpus_add_documents(corpus=corpus, documents=["gamma", "delta"])

    texts = list(Document.objects.filter(corpus=corpus).order_by("position").values_list("position", "text"))
    assert texts == [(0, "alpha"), (1, "beta"), (2, "gamma"), (3, "delta")]
    assert corpus.updated_at > before


def test_a_name_is_unique_per_owner(owner, embedding_lm):
    corpus_create(owner=owner, name="facts", documents=["a"], embedding_lm=embedding_lm)

    with pytest.raises(Conflict, match="facts"):
        corpus_create(owner=owner, name="facts", documents=["b"], embedding_lm=embedding_lm)
    corpus_create(owner=UserFactory(), name="facts", documents=["b"], embedding_lm=embedding_lm)


@pytest.mark.parametrize("name", ["", "   ", None, "x" * 201])
def test_a_name_is_required(owner, embedding_lm, name):
    with pytest.raises(InvalidInput) as error:
        corpus_create(owner=owner, name=name, documents=["a"], embedding_lm=embedding_lm)
    assert error.value.extra["path"] == "name"


def test_delete_removes_the_documents(owner, embedding_lm):
    corpus = corpus_create(owner=owner, name="facts", documents=["a", "b"], embedding_lm=embedding_lm)

    corpus_delete(corpus=corpus)

    assert not Document.objects.exists()
    assert not retrieval.corpus_exists(owner=owner, name="facts")


@pytest.mark.parametrize(
    ("text", "documents"),
    [
        ("one\ntwo\r\nthree\n\n", ["one", "two", "three"]),
        ("first paragraph\nstill first\n\n  \nsecond\n\n\nthird", ["first paragraph\nstill first", "second", "third"]),
        ("  \n ", []),
    ],
)
def test_documents_from_text(text, documents):
    assert documents_from_text(text) == documents


# --------------------------------------------------------------------------- admin


@pytest.fixture
def admin_client(client: Client) -> Client:
    client.force_login(StaffFactory())
    return client


def test_admin_pages_render(admin_client, owner, embedding_lm):
    corpus = corpus_create(owner=owner, name="facts", documents=["alpha text", "beta text"], embedding_lm=embedding_lm)
    document = corpus.documents.first()

    for url in [
        reverse("admin:cognitive_corpus_changelist"),
        reverse("admin:cognitive_corpus_add"),
        reverse("admin:cognitive_corpus_change", args=[corpus.pk]),
        reverse("admin:cognitive_document_changelist"),
        reverse("admin:cognitive_document_change", args=[document.pk]),
    ]:
        response = admin_client.get(url)
        assert response.status_code == 200, url
    page = admin_client.get(reverse("admin:cognitive_corpus_change", args=[corpus.pk])).content.decode()
    assert "alpha text" in page and "add documents" in page


def test_admin_creates_a_corpus_through_the_service(admin_client, owner, embedding_lm):
    response = admin_client.post(
        reverse("admin:cognitive_corpus_add"),
        {"name": "facts", "owner": owner.pk, "embedding_lm": embedding_lm.pk, "new_documents": "alpha\nbeta\n"},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    corpus = Corpus.objects.get(name="facts")
    assert corpus.owner == owner
    assert list(corpus.documents.order_by("position").values_list("text", flat=True)) == ["alpha", "beta"]
    assert not corpus.documents.filter(embedding__isnull=True).exists()


def test_admin_add_needs_documents(admin_client, owner):
    response = admin_client.post(reverse("admin:cognitive_corpus_add"), {"name": "facts", "owner": owner.pk})

    assert response.status_code == 200
    assert "a new corpus needs at least one document" in response.content.decode()
    assert not Corpus.objects.exists()


def _change_form(corpus: Corpus, **data: str) -> dict[str, object]:
    documents = list(corpus.documents.order_by("position"))
    form: dict[str, object] = {
        "name": corpus.name,
        "owner": corpus.owner_id,
        "embedding_lm": corpus.embedding_lm_id or "",
        "documents-TOTAL_FORMS": len(documents),
        "documents-INITIAL_FORMS": len(documents),
        "documents-MIN_NUM_FORMS": 0,
        "documents-MAX_NUM_FORMS": 1000,
    }
    for i, document in enumerate(documents):
        form[f"documents-{i}-id"] = document.pk
        form[f"documents-{i}-corpus"] = corpus.pk
    form.update(data)
    return form


def test_admin_add_documents_form(admin_client, owner, embedding_lm):
    corpus = corpus_create(owner=owner, name="facts", documents=["alpha"], embedding_lm=embedding_lm)
    url = reverse("admin:cognitive_corpus_change", args=[corpus.pk])

    response = admin_client.post(url, _change_form(corpus, new_documents="beta paragraph\nline two\n\ngamma"))

    assert response.status_code == 302, response.content.decode()[:2000]
    texts = list(corpus.documents.order_by("position").values_list("text", flat=True))
    assert texts == ["alpha", "beta paragraph\nline two", "gamma"]
    assert "added 2 documents" in [str(m) for m in get_messages(response.wsgi_request)]
    assert retrieval.retrieve(owner=owner, corpus="facts", query="gamma", method="bm25", k=1) == ["gamma"]


def test_admin_add_documents_form_explains_a_bad_document(admin_client, owner, embedding_lm):
    corpus = corpus_create(owner=owner, name="facts", documents=["alpha"], embedding_lm=embedding_lm)
    url = reverse("admin:cognitive_corpus_change", args=[corpus.pk])

    response = admin_client.post(url, _change_form(corpus, new_documents="ok\n" + "x" * (MAX_DOCUMENT_CHARS + 1)))

    assert response.status_code == 200
    assert "documents[1] is longer than" in response.content.decode()
    assert corpus.documents.count() == 1


def test_admin_inline_deletes_a_document(admin_client, owner, embedding_lm):
    corpus = corpus_create(owner=owner, name="facts", documents=["alpha", "beta"], embedding_lm=embedding_lm)
    url = reverse("admin:cognitive_corpus_change", args=[corpus.pk])

    response = admin_client.post(url, _change_form(corpus, **{"documents-0-DELETE": "on"}))

    assert response.status_code == 302
    assert list(corpus.documents.values_list("text", flat=True)) == ["beta"]


def test_documents_added_while_the_embedder_is_down_are_embedded_by_the_next_vector_query(owner, local_lm):
    lm_row = LanguageModelFactory(api_base=local_lm.url, embedding_model="openai/local-embed")
    corpus = corpus_create(owner=owner, name="facts", documents=["red apples"], embedding_lm=lm_row)
    local_lm.configure(fail_embeddings=True, fail_500_rate=1.0)
    corpus_add_documents(corpus=corpus, documents=["green pears"])
    local_lm.configure(fail_embeddings=False)
    corpus_add_documents(corpus=corpus, documents=["yellow bananas"])

    pending = corpus.documents.filter(embedding__isnull=True).values_list("text", flat=True)
    assert list(pending) == ["green pears"]
    assert retrieval.retrieve(owner=owner, corpus="facts", query="green pears", method="vector", k=1) == ["green pears"]
    assert not corpus.documents.filter(embedding__isnull=True).exists()


def test_documents_added_after_the_embedder_changed_wait_for_a_full_re_embedding(owner, local_lm_session):
    first = LanguageModelFactory(api_base=local_lm_session.url, embedding_model="openai/local-embed")
    corpus = corpus_create(owner=owner, name="facts", documents=["red apples"], embedding_lm=first)
    corpus.embedding_lm = LanguageModelFactory(api_base=local_lm_session.url, embedding_model="openai/other-embed")
    corpus.save()

    corpus = corpus_add_documents(corpus=corpus, documents=["green pears"])

    assert corpus.embedded_with == embedder_key(first)  # still describes the stored vectors
    assert corpus.documents.get(text="green pears").embedding is None
    assert retrieval.retrieve(owner=owner, corpus="facts", query="green pears", method="vector", k=1) == ["green pears"]
    corpus.refresh_from_db()
    assert corpus.embedded_with == embedder_key(corpus.embedding_lm)
    assert not corpus.documents.filter(embedding__isnull=True).exists()
