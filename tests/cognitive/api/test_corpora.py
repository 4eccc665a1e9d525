"""/api/corpora/: create, read, add documents, search; who may see what; errors as {"message", "extra"}."""

from __future__ import annotations

import pytest

from cognitive.models import Corpus, Document
from cognitive.services.corpora import corpus_create
from tests.factories import LanguageModelFactory

pytest_plugins = ["tests.fixtures_local_lm"]
pytestmark = pytest.mark.django_db

DOCS = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "Mount Everest is the highest mountain above sea level, in the Himalayas.",
]


@pytest.fixture
def embedding_lm(local_lm_session):
    return LanguageModelFactory(
        name="embedder", api_base=local_lm_session.url, embedding_model="openai/local-embed"
    )


@pytest.fixture
def corpus_of(embedding_lm):
    def make(owner, name="facts", documents=DOCS):
        return corpus_create(owner=owner, name=name, documents=list(documents), embedding_lm=embedding_lm)

    return make


def test_create_returns_the_corpus_with_its_document_count(api, user, embedding_lm):
    payload = {"name": "facts", "documents": DOCS, "embedding_lm": "embedder"}
    response = api.post("/api/corpora/", payload, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "facts" and body["document_count"] == 3 and body["pending_embeddings"] == 0
    assert body["embedding_lm"] == "embedder" and body["owner"] == user.username
    assert "documents" not in body
    assert Corpus.objects.get(pk=body["id"]).owner == user


def test_create_errors_name_the_offending_document(api, embedding_lm):
    response = api.post(
        "/api/corpora/", {"name": "facts", "documents": ["fine", "", "fine"], "embedding_lm": "embedder"}, format="json"
    )

    assert response.status_code == 400
    body = response.json()
    assert (body["message"], body["extra"]["path"]) == ("documents[1] is empty", "documents[1]")
    assert body["extra"]["fields"] == {"documents": ["documents[1] is empty"]}


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"name": "facts"}, 400),
        ({"name": "facts", "documents": "just one string"}, 400),
        ({"name": "facts", "documents": ["a"], "embedding_lm": "no-such-lm"}, 400),
        ({"documents": ["a"]}, 400),
    ],
)
def test_create_rejects_bad_payloads(api, embedding_lm, payload, status):
    response = api.post("/api/corpora/", payload, format="json")

    assert response.status_code == status
    assert set(response.json()) == {"message", "extra"}


def test_create_with_a_taken_name_conflicts(api, user, corpus_of):
    corpus_of(user)

    response = api.post("/api/corpora/", {"name": "facts", "documents": ["a"]}, format="json")

    assert response.status_code == 409
    assert "facts" in response.json()["message"]


def test_access(client_for, user, other_user, staff, corpus_of):
    corpus = corpus_of(user)
    detail = f"/api/corpora/{corpus.pk}/"
    routes = [("get", detail, None), ("get", f"{detail}documents/", None),
              ("post", f"{detail}documents/", {"documents": ["more"]}),
              ("post", f"{detail}search/", {"query": "tower", "method": "bm25", "k": 1})]

    for method, url, data in routes:
        assert getattr(client_for(None), method)(url, data, format="json").status_code == 401, url
        assert getattr(client_for(other_user), method)(url, data, format="json").status_code == 404, url
        assert getattr(client_for(user), method)(url, data, format="json").status_code in (200, 201), url
        assert getattr(client_for(staff), method)(url, data, format="json").status_code in (200, 201), url
    assert client_for(None).get("/api/corpora/").status_code == 401
    assert client_for(other_user).delete(detail).status_code == 404
    assert client_for(user).delete(detail).status_code == 204
    assert not Document.objects.exists()


def test_list_shows_own_corpora_and_staff_sees_all(client_for, user, other_user, staff, corpus_of):
    corpus_of(user, name="mine")
    corpus_of(other_user, name="theirs")

    assert [c["name"] for c in client_for(user).get("/api/corpora/").json()["results"]] == ["mine"]
    assert sorted(c["name"] for c in client_for(staff).get("/api/corpora/").json()["results"]) == ["mine", "theirs"]
    assert client_for(user).get("/api/corpora/?name=theirs").json()["count"] == 0


def test_add_documents_answers_with_the_new_count(api, user, corpus_of):
    corpus = corpus_of(user)

    response = api.post(f"/api/corpora/{corpus.pk}/documents/", {"documents": ["four", "five"]}, format="json")

    assert response.status_code == 201
    assert response.json()["document_count"] == 5


def test_add_documents_errors_name_the_index(api, user, corpus_of):
    corpus = corpus_of(user)

    response = api.post(f"/api/corpora/{corpus.pk}/documents/", {"documents": ["ok", 7]}, format="json")

    assert response.status_code == 400
    assert response.json()["extra"] == {"path": "documents[1]"}
    assert corpus.documents.count() == 3


def test_documents_are_listed_in_order_and_paginated(api, user, corpus_of):
    corpus = corpus_of(user)

    page = api.get(f"/api/corpora/{corpus.pk}/documents/?limit=2").json()

    assert page["count"] == 3 and page["next"]
    assert [(d["position"], d["text"], d["embedded"]) for d in page["results"]] == [
        (0, DOCS[0], True), (1, DOCS[1], True)
    ]
    rest = api.get(page["next"]).json()
    assert [d["text"] for d in rest["results"]] == [DOCS[2]]


@pytest.mark.parametrize(("method", "query", "expected"), [
    ("bm25", "Which tower is in Paris?", DOCS[0]),
    ("vector", "highest mountain above sea level", DOCS[2]),
])
def test_search(api, user, corpus_of, method, query, expected):
    corpus = corpus_of(user)

    response = api.post(f"/api/corpora/{corpus.pk}/search/", {"query": query, "method": method, "k": 2}, format="json")

    assert response.status_code == 200
    assert response.json()["passages"][0] == expected


@pytest.mark.parametrize(
    "payload",
    [{"query": "x", "k": 0}, {"query": "x", "k": 101}, {"query": "x", "method": "fuzzy"}, {"query": ""}, {}],
)
def test_search_rejects_bad_input(api, user, corpus_of, payload):
    corpus = corpus_of(user)

    response = api.post(f"/api/corpora/{corpus.pk}/search/", payload, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"message", "extra"}


def test_embedding_lm_down_then_up(api, local_lm):
    LanguageModelFactory(name="flaky", api_base=local_lm.url, embedding_model="openai/local-embed")
    local_lm.configure(fail_embeddings=True, fail_500_rate=1.0)

    created = api.post("/api/corpora/", {"name": "facts", "documents": DOCS, "embedding_lm": "flaky"}, format="json")
    assert created.status_code == 201
    assert created.json()["pending_embeddings"] == 3
    search = f"/api/corpora/{created.json()['id']}/search/"

    down = api.post(search, {"query": "light energy plants", "method": "vector", "k": 1}, format="json")
    assert down.status_code == 503
    assert down.json()["extra"]["retryable"] is True and "local-embed" in down.json()["message"]

    local_lm.configure(fail_embeddings=False)
    up = api.post(search, {"query": "light energy plants", "method": "vector", "k": 1}, format="json")
    assert up.status_code == 200 and up.json()["passages"] == [DOCS[1]]
    assert api.get(f"/api/corpora/{created.json()['id']}/").json()["pending_embeddings"] == 0
