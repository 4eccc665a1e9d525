"""Retrieval: BM25 and vector ranking over stored corpora, through the real local LM's embeddings."""

from __future__ import annotations

import socket

import pytest

from cognitive.engine.retrieval import embed_texts
from cognitive.errors import InvalidInput, RetryableError
from cognitive.models import Document
from cognitive.services import retrieval
from cognitive.services.corpora import corpus_add_documents, corpus_create
from tests.factories import LanguageModelFactory, UserFactory

pytest_plugins = ["tests.fixtures_local_lm"]
pytestmark = pytest.mark.django_db

DOCS = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "The Great Wall of China stretches thousands of kilometres across northern China.",
    "Python is a programming language that emphasises readability.",
    "Mount Everest is the highest mountain above sea level, in the Himalayas.",
]


def _lm(server, embedding_model="openai/local-embed"):
    return LanguageModelFactory(api_base=server.url, embedding_model=embedding_model)


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def owner():
    return UserFactory()


@pytest.fixture
def session_lm(local_lm_session):
    return _lm(local_lm_session)


def test_bm25_ranks_the_obviously_relevant_document_first(owner, session_lm):
    corpus_create(owner=owner, name="facts", documents=DOCS, embedding_lm=session_lm)

    passages = retrieval.retrieve(owner=owner, corpus="facts", query="Which tower is in Paris?", method="bm25", k=3)

    assert passages[0] == DOCS[0]
    assert len(passages) <= 3


def test_bm25_finds_the_only_match_in_a_two_document_corpus(owner, session_lm):
    # Plain Okapi idf is 0 here (a word in half the documents), which would tie both documents.
    corpus_create(owner=owner, name="pair", documents=["cats purr softly", "dogs bark loudly"], embedding_lm=session_lm)

    assert retrieval.retrieve(owner=owner, corpus="pair", query="why do dogs bark", method="bm25", k=2) == [
        "dogs bark loudly"
    ]


def test_bm25_returns_only_documents_sharing_a_word_with_the_query(owner, session_lm):
    corpus_create(owner=owner, name="facts", documents=DOCS, embedding_lm=session_lm)

    assert retrieval.retrieve(owner=owner, corpus="facts", query="zebra quokka", method="bm25", k=5) == []


def test_vector_ranks_the_document_sharing_the_query_words_first(owner, local_lm):
    lm_row = _lm(local_lm)
    corpus_create(owner=owner, name="facts", documents=DOCS, embedding_lm=lm_row)
    assert not Document.objects.filter(embedding__isnull=True).exists()  # embedded as they were added

    passages = retrieval.retrieve(
        owner=owner, corpus="facts", query="highest mountain above sea level", method="vector", k=2
    )

    assert passages[0] == DOCS[4]
    assert len(passages) == 2


def test_a_vector_query_embeds_only_the_query(owner, local_lm):
    corpus_create(owner=owner, name="facts", documents=DOCS, embedding_lm=_lm(local_lm))
    retrieval.retrieve(owner=owner, corpus="facts", query="plants and light", method="vector", k=1)
    local_lm.reset_stats()

    assert retrieval.retrieve(owner=owner, corpus="facts", query="plants and light", method="vector", k=1) == [DOCS[1]]
    assert local_lm.stats()["embedding_requests"] == 1


def test_adding_documents_updates_both_indexes(owner, local_lm):
    corpus = corpus_create(owner=owner, name="facts", documents=DOCS, embedding_lm=_lm(local_lm))
    query = "koalas sleeping eucalyptus"
    before = {method: retrieval.retrieve(owner=owner, corpus="facts", query=query, method=method, k=1)
              for method in ("bm25", "vector")}
    assert before["bm25"] == []

    corpus_add_documents(corpus=corpus, documents=["Koalas sleep most of the day in eucalyptus trees."])

    for method in ("bm25", "vector"):
        assert retrieval.retrieve(owner=owner, corpus="facts", query=query, method=method, k=1) == [
            "Koalas sleep most of the day in eucalyptus trees."
        ], method


def test_keyword_index_is_reused_until_the_corpus_changes(owner, session_lm, django_assert_max_num_queries):
    corpus = corpus_create(owner=owner, name="facts", documents=DOCS, embedding_lm=session_lm)
    retrieval.retrieve(owner=owner, corpus="facts", query="Paris tower", method="bm25", k=1)

    with django_assert_max_num_queries(1):  # the corpus lookup only; the documents come from the cache
        retrieval.retrieve(owner=owner, corpus="facts", query="Paris tower", method="bm25", k=1)

    Document.objects.filter(corpus=corpus, position=0).delete()
    assert retrieval.retrieve(owner=owner, corpus="facts", query="Paris tower", method="bm25", k=1) == []


def test_embedding_lm_down_at_create_keeps_documents_and_a_later_query_embeds_them(owner, local_lm):
    local_lm.configure(fail_embeddings=True, fail_500_rate=1.0)
    corpus_create(owner=owner, name="facts", documents=DOCS, embedding_lm=_lm(local_lm))
    assert Document.objects.filter(corpus__name="facts", embedding__isnull=True).count() == len(DOCS)

    with pytest.raises(RetryableError, match="local-embed"):
        retrieval.retrieve(owner=owner, corpus="facts", query="programming language", method="vector", k=1)
    assert retrieval.retrieve(owner=owner, corpus="facts", query="programming language", method="bm25", k=1) == [
        DOCS[3]
    ]

    local_lm.configure(fail_embeddings=False)
    assert retrieval.retrieve(owner=owner, corpus="facts", query="programming language", method="vector", k=1) == [
        DOCS[3]
    ]
    assert not Document.objects.filter(embedding__isnull=True).exists()


def test_an_unreachable_embedding_endpoint_then_a_working_one(owner, local_lm):
    lm_row = LanguageModelFactory(api_base=_closed_port_url(), embedding_model="openai/local-embed")
    corpus = corpus_create(owner=owner, name="facts", documents=DOCS[:2], embedding_lm=lm_row)
    corpus_add_documents(corpus=corpus, documents=DOCS[2:])
    assert Document.objects.filter(embedding__isnull=True).count() == len(DOCS)

    lm_row.api_base = local_lm.url
    lm_row.save()
    assert retrieval.retrieve(owner=owner, corpus="facts", query="Great Wall of China", method="vector", k=1) == [
        DOCS[2]
    ]


def test_switching_the_embedding_model_re_embeds_every_document(owner, local_lm):
    corpus = corpus_create(owner=owner, name="facts", documents=DOCS, embedding_lm=_lm(local_lm))
    retrieval.retrieve(owner=owner, corpus="facts", query="tower", method="vector", k=1)
    corpus.embedding_lm = _lm(local_lm, embedding_model="openai/other-embed")
    corpus.save()
    local_lm.reset_stats()

    assert retrieval.retrieve(owner=owner, corpus="facts", query="Eiffel Tower Paris", method="vector", k=1) == [
        DOCS[0]
    ]
    assert local_lm.stats()["embedding_requests"] == 2  # all documents in one batch, then the query
    corpus.refresh_from_db()
    assert corpus.embedded_with.startswith("openai/other-embed@")


def test_unknown_corpus_is_invalid_input_naming_it(owner, session_lm):
    corpus_create(owner=owner, name="mine", documents=DOCS, embedding_lm=session_lm)

    with pytest.raises(InvalidInput, match="unknown corpus 'docs'") as error:
        retrieval.retrieve(owner=owner, corpus="docs", query="x", method="bm25", k=1)
    assert error.value.extra["path"] == "corpus"
    # Another user's corpus of that name is just as unknown.
    with pytest.raises(InvalidInput, match="unknown corpus 'mine'"):
        retrieval.retrieve(owner=UserFactory(), corpus="mine", query="x", method="bm25", k=1)


@pytest.mark.parametrize(
    ("method", "k", "path"),
    [("bm25", 0, "k"), ("bm25", 101, "k"), ("bm25", True, "k"), ("vector", "3", "k"), ("fuzzy", 3, "method")],
)
def test_method_and_k_are_checked(owner, session_lm, method, k, path):
    corpus_create(owner=owner, name="facts", documents=DOCS, embedding_lm=session_lm)

    with pytest.raises(InvalidInput) as error:
        retrieval.retrieve(owner=owner, corpus="facts", query="tower", method=method, k=k)
    assert error.value.extra["path"] == path


def test_k_bounds_are_inclusive(owner, session_lm):
    corpus_create(owner=owner, name="facts", documents=DOCS, embedding_lm=session_lm)

    assert len(retrieval.retrieve(owner=owner, corpus="facts", query="the", method="vector", k=100)) == len(DOCS)
    assert len(retrieval.retrieve(owner=owner, corpus="facts", query="the", method="vector", k=1)) == 1


def test_corpus_exists_is_scoped_to_the_owner(owner, session_lm):
    corpus_create(owner=owner, name="facts", documents=DOCS, embedding_lm=session_lm)

    assert retrieval.corpus_exists(owner=owner, name="facts")
    assert not retrieval.corpus_exists(owner=owner, name="other")
    assert not retrieval.corpus_exists(owner=UserFactory(), name="facts")


def test_embed_texts_returns_one_vector_per_text(local_lm_session):
    lm_row = _lm(local_lm_session)

    vectors = embed_texts(lm_row, ["red apples", "green apples", "quantum physics"])

    assert len(vectors) == 3 and all(isinstance(x, float) for x in vectors[0])
    assert embed_texts(lm_row, []) == []
