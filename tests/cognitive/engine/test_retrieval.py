"""The engine's ranking on plain lists: no corpus, no database (the stored-corpus path is tested in services)."""

from __future__ import annotations

import pytest

from cognitive.engine.retrieval import MAX_K, KeywordIndex, VectorIndex, check_search
from cognitive.errors import ExecutionFailed, InvalidInput

TEXTS = ["the red apple", "a green pear", "red and green apples and pears"]


def test_keyword_index_ranks_by_shared_words_and_drops_the_rest():
    index = KeywordIndex(TEXTS)
    assert index.search("red apple", k=3) == ["the red apple", "red and green apples and pears"]
    assert index.search("pear", k=1) == ["a green pear"]
    assert index.search("banana", k=3) == []
    assert KeywordIndex([]).search("red", k=3) == []


def test_vector_index_ranks_by_cosine_similarity():
    index = VectorIndex(TEXTS, [[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    assert index.search([3.0, 0.1], k=2) == ["the red apple", "red and green apples and pears"]
    assert index.search([0.0, 1.0], k=1) == ["a green pear"]
    assert VectorIndex([], []).search([1.0, 0.0], k=1) == []


def test_vector_index_refuses_a_query_of_another_size():
    with pytest.raises(ExecutionFailed, match="different sizes") as refused:
        VectorIndex(TEXTS, [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]).search([1.0, 0.0, 0.0], k=1)
    assert refused.value.extra == {"query_dims": 3, "document_dims": 2}


@pytest.mark.parametrize(
    "query, method, k, path",
    [(" ", "bm25", 1, "query"), ("q", "fuzzy", 1, "method"), ("q", "bm25", 0, "k"), ("q", "vector", MAX_K + 1, "k"),
     ("q", "bm25", True, "k")],
)
def test_check_search_names_the_bad_field(query, method, k, path):
    with pytest.raises(InvalidInput) as refused:
        check_search(query=query, method=method, k=k)
    assert refused.value.extra == {"path": path}
