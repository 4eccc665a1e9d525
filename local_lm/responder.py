"""Pure answer logic of the local LM: chat-completions request in, answer text out.

The server in ``local_lm.server`` is only transport; everything a test may want to
predict lives here and is importable without HTTP.

How a request is read
---------------------
DSPy's ChatAdapter and JSONAdapter (dspy 3.4.1) send::

    system     "Your input fields are: ... Your output fields are:
                1. `answer` (int): ..." plus the ``[[ ## field ## ]]`` structure
    user/assistant pairs   one pair per few-shot demo
    user/assistant pairs   one pair per dspy.History turn
    user       "[[ ## question ## ]]\\nWhat is 12 + 7?\\n\\nRespond with ..."

* Output fields and their types come from the system message (the numbered
  "Your output fields are:" list; JSON schemas from the "# note:" lines are used
  for types that have no simple name, e.g. pydantic models).
* Input values come from the ``[[ ## name ## ]]`` sections of the LAST user message,
  stripped, with DSPy's trailing "Respond with ..." reminder removed.
* Demos are the assistant turns before the last user message whose user turn does
  NOT carry the "Respond with ..." reminder (History turns carry it, demos don't).
* JSON is answered instead of ``[[ ## field ## ]]`` sections when the request has
  ``response_format`` or the system message is JSONAdapter's.
* ``LOCAL_LM_FAIL_PARSE`` in the system message or the last user message makes the
  model answer prose with no field markers, so DSPy's parsing fails.

Oracle rule (what a perfect model answers; use ``oracle_answer`` for gold labels)
-------------------------------------------------------------------------------
The *primary input* is the ``question`` field if present, else the first input
field in prompt order.

1. Arithmetic: scanning the primary input first and then the other inputs in
   prompt order, the first expression made of integers joined by ``+``, ``-`` or
   ``*`` that either follows "what is", "what's", "compute", "calculate" or
   "evaluate" (case-insensitive) or is the whole value (optionally ending in "?" or
   "=") is evaluated with the usual precedence (``*`` before ``+``/``-``).
   The oracle is the decimal result: "What is 12 + 7?" -> "19",
   "Compute 2 + 3 * 4" -> "14".
2. Otherwise, when a context field (``context``, ``contexts``, ``passages``,
   ``documents``) holds a passage sharing a word with the primary input (not
   counting common words such as "what", "is", "the", "of"): in the passage sharing
   the most such words (the earliest on a tie), the first run of up to three
   words that are neither in the primary input nor common words, as written:
   "What is the capital of France?" with "Paris is the capital of France." ->
   "Paris". A list is read as DSPy renders it (``[1] «...»`` items, or JSON).
3. Otherwise: the last ``[A-Za-z0-9]+`` word of the primary input, uppercased:
   "What is the capital of France?" -> "FRANCE". No word at all -> "UNKNOWN".

Demo-skill rule (what this model actually answers)
--------------------------------------------------
An answer found in the context (rule 2) is always given: the model reads well. Otherwise,
with ``d`` few-shot demos in the prompt the model answers the oracle answer when
``stable_hash(inputs) % 100 < min(100, 30 + 20 * d)`` and ``wrong_answer(inputs)``
otherwise, i.e. it is right on roughly 30% / 50% / 70% / 90% / 100% of inputs with
0 / 1 / 2 / 3 / 4+ demos, and *which* inputs it gets right is fixed. ``inputs`` is
the dict of input values as read from the prompt (field name -> stripped text);
``stable_hash`` is the first 8 bytes (big-endian) of SHA-256 over canonical JSON.
Wrong answers: the oracle integer + 1 for arithmetic; otherwise a decoy word that
neither contains nor is contained in the oracle (case-insensitively).

Other output types (all derived deterministically from the inputs)
------------------------------------------------------------------
* ``reasoning`` / ``rationale`` (str): a short sentence ending with the answer.
* other str: the answer above.
* int: the answer if it is an integer, else ``stable_hash(inputs, field) % 10``.
* float: fields named like confidence/probability/score/certainty get 0.9 when
  the answer is right and 0.35 when it is wrong (a calibrated model); other floats
  get the numeric answer, else ``(stable_hash(inputs, field) % 100) / 100``.
* bool: ``stable_hash(inputs, field) % 2 == 0``.
* Literal[...] and Enum: ``oracle_choice(inputs, options)`` when right, the next
  option (cyclically) when wrong.
* list[str] / set[str]: up to 3 distinct lowercase words of the primary input;
  other lists hold one element of the item type.
* dict[str, V]: up to 3 distinct lowercase words of the primary input as keys;
  int values are the word's count there, other values follow the rules above.
* Optional[T] / Union[T, ...]: a value of the first non-None member.
* pydantic models and other named types: an object built from the field's JSON
  schema, each property following the rules above by its own name and type.
A prompt without DSPy structure gets the plain answer text for ``{"prompt": <last user message>}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FAIL_PARSE_MARKER = "LOCAL_LM_FAIL_PARSE"
DEFAULT_EMBEDDING_DIMS = 64
_MAX_EMBEDDING_DIMS = 4096
_MAX_SCHEMA_DEPTH = 6

_WORD_RE = re.compile(r"[A-Za-z0-9]+")
_FIELD_HEADER_RE = re.compile(r"\[\[ ## (\w+) ## \]\]")
_EXPR = r"-?\d{1,12}(?:\s*[-+*]\s*-?\d{1,12})+"
_CUED_EXPR_RE = re.compile(rf"(?:what\s+is|what's|compute|calculate|evaluate)\s+({_EXPR})(?![\w.])", re.IGNORECASE)
_WHOLE_EXPR_RE = re.compile(rf"\s*({_EXPR})\s*[?=]?\s*")
_TOKEN_RE = re.compile(r"-?\d+|[-+*]")
# DSPy appends this reminder to the request's user message (and to History turns), never to demos.
_REMINDER_RE = re.compile(r"\n*Respond with (?:the corresponding output fields|a JSON object in the following order)")
_OUTPUT_SECTION_RE = re.compile(r"Your output fields are:\n(.*?)\nAll interactions will be structured", re.DOTALL)
_FIELD_LINE_RE = re.compile(r"^\d+\. `(\w+)` \(")
_NOTE_SCHEMA_RE = re.compile(r"# note: the value you produce must adhere to the JSON schema: (\{.*\})\s*$")
_NOTE_ENUM_RE = re.compile(r"# note: the value you produce must be one of: (.*?)\s*$")
_JSON_STRUCTURE_MARKER = "Outputs will be a JSON object with the following fields."
_REMINDER_FIELD_RE = re.compile(
    r"`(?:\[\[ ## )?(\w+)(?: ## \]\])?`(?: \(must be formatted as a valid Python ([^)]*)\))?"
)
_CONFIDENCE_NAME_RE = re.compile(r"conf|prob|score|certain|likel", re.IGNORECASE)
_REASONING_NAMES = frozenset({"reasoning", "rationale"})
_DECOYS = ("PARIS", "BLUE", "SEVEN", "OCEAN", "MAPLE", "ORBIT", "QUARTZ", "WILLOW")
_CONTEXT_NAMES = frozenset({"context", "contexts", "passages", "documents"})
_LIST_ITEM_RE = re.compile(r"\[\d+\] «(.*?)»", re.DOTALL)
_MAX_CONTEXT_ANSWER_WORDS = 3
_COMMON_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "did", "for", "from", "has",
    "have", "how", "in", "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "were",
    "what", "when", "where", "which", "who", "whom", "whose", "why", "with", "you", "your",
})


# --------------------------------------------------------------------------- hashing & oracle


def stable_hash(inputs: Mapping[str, str], salt: str = "") -> int:
    """Process-independent hash of the inputs (Python's hash() is salted per process)."""
    payload = {"inputs": dict(inputs), "salt": salt}
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(canonical.encode("utf-8")).digest()[:8], "big")


def skill_threshold(demo_count: int) -> int:
    """Percentage of inputs answered correctly with ``demo_count`` demos."""
    return min(100, 30 + 20 * max(0, demo_count))


def is_answered_correctly(inputs: Mapping[str, str], demo_count: int) -> bool:
    if _arithmetic_answer(inputs) is None and context_answer(inputs) is not None:
        return True
    return stable_hash(inputs) % 100 < skill_threshold(demo_count)


def oracle_answer(inputs: Mapping[str, str]) -> str:
    """The gold answer for a str/int output under the documented oracle rule."""
    arithmetic = _arithmetic_answer(inputs)
    if arithmetic is not None:
        return arithmetic
    from_context = context_answer(inputs)
    if from_context is not None:
        return from_context
    ordered = _primary_first(inputs)
    words = _WORD_RE.findall(ordered[0]) if ordered else []
    return words[-1].upper() if words else "UNKNOWN"


def _arithmetic_answer(inputs: Mapping[str, str]) -> str | None:
    for value in _primary_first(inputs):
        result = _arithmetic_result(value)
        if result is not None:
            return str(result)
    return None


def context_answer(inputs: Mapping[str, str]) -> str | None:
    """Rule 2 of the oracle: the answer a reader finds in the passages of a context field, if any."""
    primary = [str(v) for k, v in inputs.items() if k.lower() not in _CONTEXT_NAMES]
    primary = [str(inputs["question"])] if "question" in inputs else primary[:1]
    asked = {w.lower() for w in _WORD_RE.findall(primary[0])} - _COMMON_WORDS if primary else set()
    passages = [p for k, v in inputs.items() if k.lower() in _CONTEXT_NAMES for p in _passages(str(v))]
    if not asked or not passages:
        return None
    overlaps = [len(asked & {w.lower() for w in _WORD_RE.findall(p)}) for p in passages]
    best = max(range(len(passages)), key=lambda i: (overlaps[i], -i))
    if overlaps[best] == 0:
        return None
    span: list[str] = []
    for word in _WORD_RE.findall(passages[best]):
        if word.lower() in asked or word.lower() in _COMMON_WORDS:
            if span:
                break
            continue
        span.append(word)
        if len(span) == _MAX_CONTEXT_ANSWER_WORDS:
            break
    return " ".join(span) or None


def _passages(text: str) -> list[str]:
    """The items of a list field as DSPy renders it (``[1] «...»`` or JSON), else its lines."""
    items = _LIST_ITEM_RE.findall(text)
    if items:
        return items
    try:
        loaded = json.loads(text)
    except ValueError:
        loaded = None
    if isinstance(loaded, list):
        return [str(item) for item in loaded]
    return [line for line in text.splitlines() if line.strip()]


def wrong_answer(inputs: Mapping[str, str]) -> str:
    """The deterministic wrong answer the model gives when its skill misses."""
    oracle = oracle_answer(inputs)
    if _as_int(oracle) is not None:
        return str(int(oracle) + 1)
    start = stable_hash(inputs, "decoy") % len(_DECOYS)
    for offset in range(len(_DECOYS)):
        decoy = _DECOYS[(start + offset) % len(_DECOYS)]
        if decoy.lower() not in oracle.lower() and oracle.lower() not in decoy.lower():
            return decoy
    return "NOT-" + oracle[::-1]  # unreachable with the current decoys; kept as a safe fallback


def model_answer(inputs: Mapping[str, str], demo_count: int) -> str:
    """What this model answers for a str output given ``demo_count`` demos."""
    return oracle_answer(inputs) if is_answered_correctly(inputs, demo_count) else wrong_answer(inputs)


def oracle_choice(inputs: Mapping[str, str], options: Sequence[Any]) -> Any:
    """Gold option of a Literal output: the option equal to the oracle text, else a hashed pick."""
    return options[_oracle_choice_index(inputs, options)]


def _oracle_choice_index(inputs: Mapping[str, str], options: Sequence[Any]) -> int:
    oracle = oracle_answer(inputs).lower()
    for index, option in enumerate(options):
        if str(option).lower() == oracle:
            return index
    return stable_hash(inputs, "literal") % len(options)


def _primary_first(inputs: Mapping[str, str]) -> list[str]:
    values = [str(v) for k, v in inputs.items() if k != "question"]
    return [str(inputs["question"]), *values] if "question" in inputs else values


def _arithmetic_result(text: str) -> int | None:
    match = _CUED_EXPR_RE.search(text) or _WHOLE_EXPR_RE.fullmatch(text)
    return _evaluate(match.group(1)) if match else None


def _evaluate(expression: str) -> int:
    """Evaluate ``int (op int)*`` with * binding tighter than + and -; no eval()."""
    # The tokenizer glues a binary minus to the next number ("3 -4"); re-split so operators alternate.
    items: list[str] = []
    for piece in _TOKEN_RE.findall(expression):
        if items and items[-1] not in "+-*" and len(piece) > 1 and piece.startswith("-"):
            items.extend(["-", piece[1:]])
        else:
            items.append(piece)
    terms: list[int] = [int(items[0])]
    signs: list[int] = [1]
    for op, number in zip(items[1::2], items[2::2], strict=True):
        if op == "*":
            terms[-1] *= int(number)
        else:
            terms.append(int(number))
            signs.append(1 if op == "+" else -1)
    return sum(sign * term for sign, term in zip(signs, terms, strict=True))


def _as_int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def _as_float(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------- type descriptions


@dataclass(frozen=True)
class TypeSpec:
    """A parsed output type: a name (``int``, ``list``, ``Literal``, ``object``...) plus parameters."""

    name: str
    args: tuple[TypeSpec, ...] = ()
    options: tuple[Any, ...] = ()  # Literal / enum options
    fields: tuple[tuple[str, TypeSpec], ...] = ()  # properties of a JSON-schema object

    @property
    def is_known(self) -> bool:
        if self.name not in _KNOWN_TYPE_NAMES:
            return False
        return all(arg.is_known for arg in self.args) and all(spec.is_known for _, spec in self.fields)


_KNOWN_TYPE_NAMES = frozenset(
    {"str", "int", "float", "bool", "list", "List", "set", "Set", "frozenset", "tuple", "Tuple", "dict", "Dict",
     "Literal", "Union", "Optional", "NoneType", "None", "Any", "object", "Ellipsis"}
)
STR = TypeSpec("str")


def parse_type_name(text: str) -> TypeSpec:
    """Parse DSPy's ``get_annotation_name`` output, e.g. ``dict[str, list[int]]`` or ``Literal['a', 'b']``."""
    parser = _TypeNameParser(text)
    try:
        spec = parser.parse_type()
    except _TypeNameError:
        return TypeSpec(text.strip())
    # Trailing text means a name we do not understand; an unknown TypeSpec sends callers to the JSON schema.
    return spec if parser.at_end() else TypeSpec(text.strip())


class _TypeNameError(ValueError):
    pass


class _TypeNameParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        self._skip_spaces()
        return self.pos >= len(self.text)

    def parse_type(self) -> TypeSpec:
        name = self._identifier()
        if not self._accept("["):
            return TypeSpec(name)
        if name == "Literal":
            options = self._comma_separated(self._literal)
            return TypeSpec(name, options=tuple(options))
        args = self._comma_separated(self.parse_type)
        return TypeSpec(name, args=tuple(args))

    def _comma_separated(self, item) -> list[Any]:
        items = [item()]
        while self._accept(","):
            items.append(item())
        if not self._accept("]"):
            raise _TypeNameError(self.text)
        return items

    def _identifier(self) -> str:
        self._skip_spaces()
        match = re.compile(r"[\w.]+").match(self.text, self.pos)
        if not match:
            return ""
        self.pos = match.end()
        return "Ellipsis" if match.group() == "..." else match.group()

    def _literal(self) -> Any:
        self._skip_spaces()
        if self.pos < len(self.text) and self.text[self.pos] in "'\"":
            return self._quoted()
        match = re.compile(r"[^,\]]+").match(self.text, self.pos)
        raw = match.group().strip() if match else ""
        self.pos = match.end() if match else self.pos
        return _literal_scalar(raw)

    def _quoted(self) -> str:
        quote = self.text[self.pos]
        self.pos += 1
        chars: list[str] = []
        while self.pos < len(self.text) and self.text[self.pos] != quote:
            if self.text[self.pos] == "\\" and self.pos + 1 < len(self.text):
                self.pos += 1
            chars.append(self.text[self.pos])
            self.pos += 1
        self.pos += 1
        return "".join(chars)

    def _accept(self, char: str) -> bool:
        self._skip_spaces()
        if self.text.startswith(char, self.pos):
            self.pos += len(char)
            return True
        return False

    def _skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1


def _literal_scalar(raw: str) -> Any:
    """Non-string Literal options are printed bare (``Literal[1, True]``)."""
    constants = {"True": True, "False": False, "None": None}
    if raw in constants:
        return constants[raw]
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def type_from_schema(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None, depth: int = 0) -> TypeSpec:
    """Map a pydantic JSON schema onto a TypeSpec so one generator handles both sources."""
    root = schema if root is None else root
    if depth > _MAX_SCHEMA_DEPTH:
        return STR
    if "$ref" in schema:
        return type_from_schema(_resolve_ref(root, schema["$ref"]), root, depth + 1)
    if "enum" in schema or "const" in schema:
        return TypeSpec("Literal", options=tuple(schema.get("enum", [schema.get("const")])))
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return TypeSpec("Union", args=tuple(type_from_schema(s, root, depth + 1) for s in schema[key]))
    kind = schema.get("type")
    if isinstance(kind, list):
        return TypeSpec("Union", args=tuple(type_from_schema({**schema, "type": k}, root, depth + 1) for k in kind))
    return _type_from_schema_kind(kind, schema, root, depth)


def _type_from_schema_kind(kind: Any, schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> TypeSpec:
    simple = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "NoneType"}
    if kind in simple:
        return TypeSpec(simple[kind])
    if kind == "array":
        if "prefixItems" in schema:
            return TypeSpec("tuple", args=tuple(type_from_schema(s, root, depth + 1) for s in schema["prefixItems"]))
        items = schema.get("items")
        return TypeSpec("list", args=(type_from_schema(items, root, depth + 1) if isinstance(items, dict) else STR,))
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        if properties:
            fields = tuple((name, type_from_schema(sub, root, depth + 1)) for name, sub in properties.items())
            return TypeSpec("object", fields=fields)
        extra = schema.get("additionalProperties")
        value = type_from_schema(extra, root, depth + 1) if isinstance(extra, dict) else STR
        return TypeSpec("dict", args=(STR, value))
    return STR


def _resolve_ref(root: Mapping[str, Any], ref: str) -> Mapping[str, Any]:
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        node = node.get(part, {}) if isinstance(node, Mapping) else {}
    return node if isinstance(node, Mapping) else {}


# --------------------------------------------------------------------------- prompt parsing


@dataclass(frozen=True)
class OutputField:
    name: str
    type: TypeSpec


@dataclass(frozen=True)
class ParsedPrompt:
    output_fields: tuple[OutputField, ...]
    inputs: dict[str, str]
    demo_count: int
    json_mode: bool
    fail_parse: bool

    @property
    def is_structured(self) -> bool:
        """True when the prompt came from a DSPy adapter (we found output fields)."""
        return bool(self.output_fields)


def message_text(message: Mapping[str, Any]) -> str:
    """Content of an OpenAI message; multimodal content lists keep only their text parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(parts)
    return ""


def parse_prompt(messages: Sequence[Mapping[str, Any]], response_format: Any = None) -> ParsedPrompt:
    system = "\n".join(message_text(m) for m in messages if m.get("role") in ("system", "developer"))
    last_user_index = _last_index(messages, "user")
    last_user = message_text(messages[last_user_index]) if last_user_index is not None else ""
    output_fields = _output_fields(system) or _output_fields_from_reminder(last_user)
    return ParsedPrompt(
        output_fields=output_fields,
        inputs=parse_input_values(last_user),
        demo_count=count_demos(messages),
        json_mode=_wants_json(response_format) or _JSON_STRUCTURE_MARKER in system,
        fail_parse=FAIL_PARSE_MARKER in system or FAIL_PARSE_MARKER in last_user,
    )


def _wants_json(response_format: Any) -> bool:
    if isinstance(response_format, dict):
        return response_format.get("type") != "text"
    return response_format is not None


def _last_index(messages: Sequence[Mapping[str, Any]], role: str) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].get("role") == role:
            return index
    return None


def parse_input_values(user_text: str) -> dict[str, str]:
    """``[[ ## name ## ]]`` sections of a user message; unstructured text becomes ``{"prompt": text}``."""
    body = _strip_reminder(user_text)
    sections: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        match = _FIELD_HEADER_RE.match(line.strip())
        if match:
            rest = line.strip()[match.end() :].strip()
            sections.append((match.group(1), [rest] if rest else []))
        elif sections:
            sections[-1][1].append(line)
    values = {name: "\n".join(lines).strip() for name, lines in sections if name != "completed"}
    return values if values else {"prompt": body.strip()}


def _strip_reminder(text: str) -> str:
    match = _REMINDER_RE.search(text)
    return text[: match.start()] if match else text


def count_demos(messages: Sequence[Mapping[str, Any]]) -> int:
    """Assistant turns before the final user turn whose user turn lacks DSPy's reminder (i.e. not History)."""
    last_user_index = _last_index(messages, "user")
    if last_user_index is None:
        return 0
    demos = 0
    previous_user = None
    for message in messages[:last_user_index]:
        role = message.get("role")
        if role == "user":
            previous_user = message_text(message)
        elif role == "assistant" and previous_user is not None:
            demos += 0 if _REMINDER_RE.search(previous_user) else 1
            previous_user = None
    return demos


def _output_fields(system: str) -> tuple[OutputField, ...]:
    section = _OUTPUT_SECTION_RE.search(system)
    if not section:
        return ()
    note_types = _field_note_types(system)
    fields = []
    for line in section.group(1).splitlines():
        match = _FIELD_LINE_RE.match(line)
        if not match:
            continue
        name = match.group(1)
        spec = parse_type_name(_balanced_parenthesised(line, match.end()))
        if not spec.is_known and name in note_types:
            spec = note_types[name]
        fields.append(OutputField(name, spec))
    return tuple(fields)


def _balanced_parenthesised(line: str, start: int) -> str:
    """Text up to the ``)`` closing the one before ``start``; quotes inside Literal options may hold parentheses."""
    depth, quote = 1, ""
    for index in range(start, len(line)):
        char = line[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
            if depth == 0:
                return line[start:index]
    return line[start:]


def _field_note_types(system: str) -> dict[str, TypeSpec]:
    """Types described by the adapters' ``# note:`` lines (JSON schemas, enum values), keyed by field name."""
    notes: dict[str, str] = {}
    for match in re.finditer(r"\[\[ ## (\w+) ## \]\]\n\{\1\}([^\n]*)", system):
        notes[match.group(1)] = match.group(2)
    notes.update(_json_structure_notes(system))
    types = {}
    for name, note in notes.items():
        schema = _NOTE_SCHEMA_RE.search(note)
        enum_values = _NOTE_ENUM_RE.search(note)
        if schema:
            try:
                types[name] = type_from_schema(json.loads(schema.group(1)))
            except json.JSONDecodeError:
                continue
        elif enum_values:
            types[name] = TypeSpec("Literal", options=tuple(enum_values.group(1).split("; ")))
    return types


def _json_structure_notes(system: str) -> dict[str, str]:
    start = system.find(_JSON_STRUCTURE_MARKER)
    brace = system.find("{", start) if start >= 0 else -1
    if brace < 0:
        return {}
    try:
        structure, _ = json.JSONDecoder().raw_decode(system, brace)
    except json.JSONDecodeError:
        return {}
    return {k: v for k, v in structure.items() if isinstance(v, str)} if isinstance(structure, dict) else {}


def _output_fields_from_reminder(user_text: str) -> tuple[OutputField, ...]:
    """Fallback for prompts without a parsable system message: read the "Respond with ..." reminder."""
    match = _REMINDER_RE.search(user_text)
    if not match:
        return ()
    fields = []
    for found in _REMINDER_FIELD_RE.finditer(user_text[match.start() :]):
        if found.group(1) != "completed":
            fields.append(OutputField(found.group(1), parse_type_name(found.group(2)) if found.group(2) else STR))
    return tuple(fields)


# --------------------------------------------------------------------------- value generation


@dataclass(frozen=True)
class _Context:
    inputs: dict[str, str]
    correct: bool
    answer: str
    primary_words: tuple[str, ...] = field(default=())

    @classmethod
    def build(cls, inputs: dict[str, str], demo_count: int) -> _Context:
        correct = is_answered_correctly(inputs, demo_count)
        answer = oracle_answer(inputs) if correct else wrong_answer(inputs)
        ordered = _primary_first(inputs)
        words = [w.lower() for w in _WORD_RE.findall(ordered[0])] if ordered else []
        return cls(inputs=inputs, correct=correct, answer=answer, primary_words=tuple(words))

    def distinct_words(self, limit: int = 3) -> list[str]:
        return list(dict.fromkeys(self.primary_words))[:limit] or ["none"]


def generate_value(name: str, spec: TypeSpec, ctx: _Context, depth: int = 0) -> Any:
    """A JSON-compatible value for field ``name`` that DSPy's parse_value accepts for ``spec``."""
    if depth > _MAX_SCHEMA_DEPTH:
        return ctx.answer
    generator = _GENERATORS.get(spec.name, _generate_fallback)
    return generator(name, spec, ctx, depth)


def _generate_str(name: str, spec: TypeSpec, ctx: _Context, depth: int) -> Any:
    if name.lower() in _REASONING_NAMES:
        return f"Working through the input step by step, the answer is {ctx.answer}."
    return ctx.answer


def _generate_int(name: str, spec: TypeSpec, ctx: _Context, depth: int) -> Any:
    number = _as_int(ctx.answer)
    return number if number is not None else stable_hash(ctx.inputs, name) % 10


def _generate_float(name: str, spec: TypeSpec, ctx: _Context, depth: int) -> Any:
    if _CONFIDENCE_NAME_RE.search(name):
        return 0.9 if ctx.correct else 0.35
    number = _as_float(ctx.answer)
    return number if number is not None else (stable_hash(ctx.inputs, name) % 100) / 100


def _generate_bool(name: str, spec: TypeSpec, ctx: _Context, depth: int) -> Any:
    return stable_hash(ctx.inputs, name) % 2 == 0


def _generate_literal(name: str, spec: TypeSpec, ctx: _Context, depth: int) -> Any:
    if not spec.options:
        return ctx.answer
    index = _oracle_choice_index(ctx.inputs, spec.options)
    return spec.options[index if ctx.correct else (index + 1) % len(spec.options)]


def _generate_list(name: str, spec: TypeSpec, ctx: _Context, depth: int) -> Any:
    item = spec.args[0] if spec.args else STR
    if item.name == "str":
        return ctx.distinct_words()
    return [generate_value(name, item, ctx, depth + 1)]


def _generate_tuple(name: str, spec: TypeSpec, ctx: _Context, depth: int) -> Any:
    if len(spec.args) == 2 and spec.args[1].name == "Ellipsis":
        return [generate_value(name, spec.args[0], ctx, depth + 1)]
    return [generate_value(name, arg, ctx, depth + 1) for arg in spec.args]


def _generate_dict(name: str, spec: TypeSpec, ctx: _Context, depth: int) -> Any:
    key_spec = spec.args[0] if spec.args else STR
    value_spec = spec.args[1] if len(spec.args) > 1 else STR
    result: dict[str, Any] = {}
    for index, word in enumerate(ctx.distinct_words()):
        key = str(index) if key_spec.name == "int" else word
        if value_spec.name == "int":
            result[key] = ctx.primary_words.count(word)
        else:
            result[key] = generate_value(word, value_spec, ctx, depth + 1)
    return result


def _generate_union(name: str, spec: TypeSpec, ctx: _Context, depth: int) -> Any:
    members = [arg for arg in spec.args if arg.name not in ("NoneType", "None")]
    return generate_value(name, members[0], ctx, depth + 1) if members else None


def _generate_object(name: str, spec: TypeSpec, ctx: _Context, depth: int) -> Any:
    return {prop: generate_value(prop, prop_spec, ctx, depth + 1) for prop, prop_spec in spec.fields}


def _generate_none(name: str, spec: TypeSpec, ctx: _Context, depth: int) -> Any:
    return None


def _generate_fallback(name: str, spec: TypeSpec, ctx: _Context, depth: int) -> Any:
    # Unknown named types without a schema: text is the best guess DSPy may still coerce.
    return _generate_str(name, spec, ctx, depth)


_GENERATORS = {
    "str": _generate_str, "Any": _generate_str, "int": _generate_int, "float": _generate_float,
    "bool": _generate_bool, "Literal": _generate_literal, "list": _generate_list, "List": _generate_list,
    "set": _generate_list, "Set": _generate_list, "frozenset": _generate_list, "tuple": _generate_tuple,
    "Tuple": _generate_tuple, "dict": _generate_dict, "Dict": _generate_dict, "Union": _generate_union,
    "Optional": _generate_union, "object": _generate_object, "NoneType": _generate_none, "None": _generate_none,
}


# --------------------------------------------------------------------------- rendering


def format_chat_value(value: Any) -> str:
    """Render a value the way DSPy's ChatAdapter formats field values (Python-ish scalars, JSON containers)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)  # bool -> True/False, None -> None, numbers -> digits: all parse_value-compatible


def render_answer(prompt: ParsedPrompt) -> str:
    """The assistant message text for a parsed prompt."""
    if prompt.fail_parse:
        return "I would rather not follow the requested output format this time."
    ctx = _Context.build(prompt.inputs, prompt.demo_count)
    if not prompt.is_structured:
        return ctx.answer
    values = {f.name: generate_value(f.name, f.type, ctx) for f in prompt.output_fields}
    if prompt.json_mode:
        return json.dumps(values, ensure_ascii=False)
    sections = [f"[[ ## {name} ## ]]\n{format_chat_value(value)}" for name, value in values.items()]
    return "\n\n".join([*sections, "[[ ## completed ## ]]"])


@dataclass(frozen=True)
class ChatReply:
    content: str
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def count_tokens(text: str) -> int:
    """Approximate tokens as whitespace-separated words (good enough for usage accounting)."""
    return len(text.split())


def respond(request: Mapping[str, Any]) -> ChatReply:
    """Answer an OpenAI chat-completions request body."""
    messages = request.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise ValueError("'messages' must be a list of message objects")
    prompt = parse_prompt(messages, request.get("response_format"))
    content = render_answer(prompt)
    prompt_tokens = sum(count_tokens(message_text(m)) for m in messages)
    return ChatReply(content=content, prompt_tokens=prompt_tokens, completion_tokens=count_tokens(content))


# --------------------------------------------------------------------------- embeddings


def embed(text: str, dims: int = DEFAULT_EMBEDDING_DIMS) -> list[float]:
    """Signed hashed bag of lowercase words, L2-normalised: shared words mean high cosine similarity."""
    if not 1 <= dims <= _MAX_EMBEDDING_DIMS:
        raise ValueError(f"dimensions must be between 1 and {_MAX_EMBEDDING_DIMS}")
    vector = [0.0] * dims
    # An empty text still gets a unit vector so cosine similarity never divides by zero downstream.
    for token in [w.lower() for w in _WORD_RE.findall(text)] or [""]:
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        index = int.from_bytes(digest[:4], "big") % dims
        vector[index] += 1.0 if digest[4] % 2 == 0 else -1.0
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0.0:  # signed collisions cancelled out exactly
        vector[0], norm = 1.0, 1.0
    return [v / norm for v in vector]


def encode_embedding(vector: Sequence[float], encoding_format: str | None) -> list[float] | str:
    """OpenAI's SDK asks for base64 (little-endian float32) by default; plain clients get floats."""
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return list(vector)


def embedding_inputs(raw: Any) -> list[str]:
    """Normalise the ``input`` of an embeddings request (str, list of str, or token-id lists)."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        return [" ".join(str(x) for x in raw)]
    if isinstance(raw, list) and raw:
        texts = []
        for item in raw:
            if isinstance(item, str):
                texts.append(item)
            elif isinstance(item, list) and all(isinstance(x, int) for x in item):
                texts.append(" ".join(str(x) for x in item))
            else:
                raise ValueError("'input' items must be strings or lists of token ids")
        return texts
    raise ValueError("'input' must be a non-empty string or list of strings")
