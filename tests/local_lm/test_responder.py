"""The answer logic, driven by prompts that DSPy's own adapters format (no HTTP)."""

from __future__ import annotations

import base64
import enum
import math
import struct
from typing import Literal

import dspy
import pydantic
import pytest
from dspy.adapters import ChatAdapter, JSONAdapter
from dspy.utils.exceptions import AdapterParseError

from local_lm import responder
from local_lm.responder import (
    TypeSpec,
    count_demos,
    embed,
    model_answer,
    oracle_answer,
    oracle_choice,
    parse_type_name,
    respond,
    skill_threshold,
    stable_hash,
    wrong_answer,
)


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


class Person(pydantic.BaseModel):
    name: str
    age: int
    confidence: float


class RichSignature(dspy.Signature):
    """Answer with many typed fields."""

    question: str = dspy.InputField()
    context: list[str] = dspy.InputField()
    reasoning: str = dspy.OutputField()
    answer: int = dspy.OutputField()
    confidence: float = dspy.OutputField()
    tags: list[str] = dspy.OutputField()
    ok: bool = dspy.OutputField()
    verdict: Literal["yes", "no", "it's (maybe)"] = dspy.OutputField()
    counts: dict[str, int] = dspy.OutputField()
    maybe: int | None = dspy.OutputField()
    mood: Mood = dspy.OutputField()
    person: Person = dspy.OutputField()
    pair: tuple[int, str] = dspy.OutputField()


def _answer_for(adapter: ChatAdapter, signature: type[dspy.Signature], inputs: dict, demos: list | None = None,
                response_format: dict | None = None) -> str:
    messages = adapter.format(signature, demos=demos or [], inputs=inputs)
    request = {"model": "local", "messages": messages}
    if response_format is not None:
        request["response_format"] = response_format
    return respond(request).content


# --------------------------------------------------------------------------- oracle and skill rules


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What is 12 + 7?", "19"),
        ("what is 3 - 10?", "-7"),
        ("What is 6 * 7?", "42"),
        ("Compute 2 + 3 * 4", "14"),
        ("What is 12+7?", "19"),
        ("What is 3 - -4?", "7"),
        ("2 - 3 - 4", "-5"),
        ("5 * 5 =", "25"),
        ("What is the capital of France?", "FRANCE"),
        ("Call 555-1234 today", "TODAY"),  # no cue and not the whole value: not arithmetic
        ("What is 3.5 + 1?", "1"),  # decimals are not part of the arithmetic rule
        ("?!", "UNKNOWN"),
    ],
)
def test_oracle_answer_rules(text: str, expected: str) -> None:
    assert oracle_answer({"question": text}) == expected


def test_oracle_prefers_question_then_scans_other_inputs_for_arithmetic() -> None:
    assert oracle_answer({"context": "a red car", "question": "which colour"}) == "COLOUR"
    assert oracle_answer({"context": "What is 2 * 21?", "question": "see context"}) == "42"
    assert oracle_answer({"topic": "birds and bees", "extra": "zzz"}) == "BEES"


RENDERED_CONTEXT = (
    "[1] «DSPex runs DSPy programs in production on Django, Celery and Redis.»\n"
    "[2] «Paris is the capital of France, and the Seine flows through it.»"
)


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ({"question": "What is the capital of France?", "context": RENDERED_CONTEXT}, "Paris"),
        ({"question": "What is the capital of France?", "passages": '["Paris is the capital of France."]'}, "Paris"),
        ({"question": "Where does the Seine flow?", "context": RENDERED_CONTEXT}, "Paris"),
        ({"question": "What is 2 + 3?", "context": RENDERED_CONTEXT}, "5"),  # arithmetic comes first
        ({"question": "Who painted the Mona Lisa?", "context": RENDERED_CONTEXT}, "LISA"),  # nothing shared: rule 3
    ],
    ids=["chat-list", "json-list", "the-passage-sharing-most", "arithmetic-first", "no-overlap"],
)
def test_the_oracle_answers_from_the_context_when_a_passage_matches(inputs: dict, expected: str) -> None:
    assert oracle_answer(inputs) == expected


def test_an_answer_found_in_the_context_is_given_whatever_the_demos() -> None:
    inputs = {"question": "What is the capital of France?", "context": RENDERED_CONTEXT}

    assert [model_answer(inputs, demo_count=d) for d in range(4)] == ["Paris"] * 4


def test_skill_threshold_grows_with_demos_and_caps_at_100() -> None:
    assert [skill_threshold(d) for d in range(6)] == [30, 50, 70, 90, 100, 100]


def test_model_answer_follows_the_hash_rule() -> None:
    for i in range(200):
        inputs = {"question": f"What is {i} + {i * 3}?"}
        expected_right = stable_hash(inputs) % 100 < skill_threshold(1)
        assert (model_answer(inputs, 1) == oracle_answer(inputs)) is expected_right
        assert model_answer(inputs, 4) == oracle_answer(inputs)


def test_wrong_answers_differ_from_the_oracle_even_loosely() -> None:
    assert wrong_answer({"question": "What is 12 + 7?"}) == "20"
    for word in ["Paris", "blue", "A", "S", "seventy", "ocean", "xyz"]:
        inputs = {"question": f"say {word}"}
        oracle, wrong = oracle_answer(inputs).lower(), wrong_answer(inputs).lower()
        assert oracle not in wrong and wrong not in oracle


def test_stable_hash_is_order_independent_and_salted() -> None:
    assert stable_hash({"a": "1", "b": "2"}) == stable_hash({"b": "2", "a": "1"})
    assert stable_hash({"a": "1"}) != stable_hash({"a": "1"}, salt="x")


def test_oracle_choice_prefers_an_option_equal_to_the_oracle_text() -> None:
    assert oracle_choice({"question": "Is the answer yes"}, ["no", "yes"]) == "yes"
    options = ["alpha", "beta", "gamma"]
    assert oracle_choice({"question": "pick one"}, options) in options


# --------------------------------------------------------------------------- type names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("int", TypeSpec("int")),
        ("list[str]", TypeSpec("list", args=(TypeSpec("str"),))),
        ("dict[str, list[int]]", TypeSpec("dict", args=(TypeSpec("str"), TypeSpec("list", args=(TypeSpec("int"),))))),
        ("Literal['yes', \"it's\", 3, True]", TypeSpec("Literal", options=("yes", "it's", 3, True))),
        ("Union[int, NoneType]", TypeSpec("Union", args=(TypeSpec("int"), TypeSpec("NoneType")))),
    ],
)
def test_parse_type_name(name: str, expected: TypeSpec) -> None:
    assert parse_type_name(name) == expected


def test_unparsable_type_names_are_unknown() -> None:
    assert not parse_type_name("list[int").is_known
    assert not parse_type_name("Person").is_known


# --------------------------------------------------------------------------- full prompts from DSPy's adapters


@pytest.mark.parametrize("adapter", [ChatAdapter(), JSONAdapter()], ids=["chat", "json"])
def test_every_output_type_parses_with_the_declared_type(adapter: ChatAdapter) -> None:
    inputs = {"question": "What is 12 + 7?", "context": ["numbers", "sums"]}
    response_format = {"type": "json_object"} if isinstance(adapter, JSONAdapter) else None
    parsed = adapter.parse(RichSignature, _answer_for(adapter, RichSignature, inputs, response_format=response_format))

    assert isinstance(parsed["reasoning"], str) and parsed["reasoning"]
    assert parsed["answer"] in (19, 20)  # oracle or oracle + 1, depending on the skill draw
    assert parsed["confidence"] == (0.9 if parsed["answer"] == 19 else 0.35)
    assert parsed["tags"] == ["what", "is", "12"]
    assert isinstance(parsed["ok"], bool)
    assert parsed["verdict"] in ("yes", "no", "it's (maybe)")
    assert parsed["counts"] == {"what": 1, "is": 1, "12": 1}
    assert parsed["maybe"] == parsed["answer"]
    assert isinstance(parsed["mood"], Mood)
    assert isinstance(parsed["person"], Person) and 0 <= parsed["person"].confidence <= 1
    assert isinstance(parsed["pair"], tuple) and isinstance(parsed["pair"][0], int)


def test_chat_format_lists_fields_in_order_and_ends_with_completed() -> None:
    text = _answer_for(ChatAdapter(), dspy.Signature("question -> answer, notes"), {"question": "hi there"})
    headers = [line for line in text.splitlines() if line.startswith("[[ ##")]
    assert headers == ["[[ ## answer ## ]]", "[[ ## notes ## ]]", "[[ ## completed ## ]]"]


def test_response_format_switches_a_chat_prompt_to_json() -> None:
    signature = dspy.Signature("question -> answer: int")
    json_format = {"type": "json_object"}
    text = _answer_for(ChatAdapter(), signature, {"question": "What is 1 + 1?"}, response_format=json_format)
    assert JSONAdapter().parse(signature, text)["answer"] in (2, 3)
    assert "[[ ##" not in text


def test_demos_are_counted_but_history_turns_are_not() -> None:
    signature = dspy.Signature("question -> answer")
    demos = [dspy.Example(question=f"What is {i} + 1?", answer=str(i + 1)) for i in range(3)]
    assert count_demos(ChatAdapter().format(signature, demos=demos, inputs={"question": "q"})) == 3

    with_history = dspy.Signature("question, history: dspy.History -> answer")
    history = dspy.History(messages=[{"question": "earlier", "answer": "ANSWER"}])
    messages = ChatAdapter().format(with_history, demos=demos[:1], inputs={"question": "q", "history": history})
    assert count_demos(messages) == 1


def test_demos_change_the_answer_exactly_as_documented() -> None:
    signature = dspy.Signature("question -> answer")
    demos = [dspy.Example(question=f"What is {i} + 1?", answer=str(i + 1)) for i in range(4)]
    for i in range(30):
        inputs = {"question": f"What is {i} * 3?"}
        for d in (0, 2, 4):
            text = _answer_for(ChatAdapter(), signature, inputs, demos=demos[:d])
            assert ChatAdapter().parse(signature, text)["answer"] == model_answer(inputs, d)


def test_fail_parse_marker_produces_unparsable_text() -> None:
    signature = dspy.Signature("question -> answer", instructions="LOCAL_LM_FAIL_PARSE: break the format")
    for adapter in (ChatAdapter(), JSONAdapter()):
        text = _answer_for(adapter, signature, {"question": "hi"})
        assert "[[ ##" not in text
        with pytest.raises(AdapterParseError):
            adapter.parse(signature, text)


def test_unstructured_prompt_gets_plain_answer_and_usage_counts_words() -> None:
    reply = respond({"messages": [{"role": "system", "content": "Be brief."},
                                  {"role": "user", "content": "Name the colour of the sky"}]})
    assert reply.content in ("SKY", wrong_answer({"prompt": "Name the colour of the sky"}))
    assert reply.prompt_tokens == 8
    assert reply.completion_tokens == 1
    assert reply.total_tokens == 9


def test_multimodal_content_lists_are_read_as_text() -> None:
    reply = respond({"messages": [{"role": "user", "content": [{"type": "text", "text": "What is 2 * 2?"}]}]})
    assert reply.content in ("4", "5")


def test_bad_requests_are_rejected() -> None:
    with pytest.raises(ValueError):
        respond({"messages": "hello"})


# --------------------------------------------------------------------------- embeddings


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embeddings_are_deterministic_unit_vectors_where_shared_words_are_close() -> None:
    cat, kitten, stocks = embed("The cat sat on the mat"), embed("the CAT sat on a mat"), embed("Stock markets fell")
    assert len(cat) == responder.DEFAULT_EMBEDDING_DIMS
    assert cat == embed("The cat sat on the mat")
    assert math.isclose(_cosine(cat, cat), 1.0, rel_tol=1e-9)
    assert _cosine(cat, kitten) > _cosine(cat, stocks)
    assert math.isclose(_cosine(embed(""), embed("")), 1.0, rel_tol=1e-9)
    assert len(embed("x", dims=8)) == 8


def test_base64_embedding_encoding_round_trips() -> None:
    vector = embed("hello world")
    raw = base64.b64decode(responder.encode_embedding(vector, "base64"))
    decoded = struct.unpack(f"<{len(vector)}f", raw)
    assert all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7) for a, b in zip(decoded, vector, strict=True))


def test_embedding_inputs_accept_strings_lists_and_token_ids() -> None:
    assert responder.embedding_inputs("a") == ["a"]
    assert responder.embedding_inputs(["a", "b"]) == ["a", "b"]
    assert responder.embedding_inputs([1, 2]) == ["1 2"]
    with pytest.raises(ValueError):
        responder.embedding_inputs([])
