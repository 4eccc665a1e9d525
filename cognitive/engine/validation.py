"""Compose-time validation: a pipeline spec (JSON) becomes a `PipelinePlan`, or an InvalidInput.

Every error names the JSON path of the offending part in `extra.path`
(`steps[2].inputs.context`), so an editor can point at it. Module signatures and corpora are
looked up through callables, so this module needs no database.

Spec format::

    {"steps": [
       {"id": "search", "parallel": [
          {"id": "keyword", "builtin": "retrieve", "corpus": "docs", "method": "bm25", "k": 5,
           "inputs": {"query": "$input.question"}},
          {"id": "vector", "builtin": "retrieve", "corpus": "docs", "method": "vector", "k": 5}]},
       {"id": "merge", "builtin": "merge", "inputs": {"lists": ["$keyword.passages", "$vector.passages"]}},
       {"id": "answer", "module": "rag_qa", "inputs": {"context": "$merge.passages"}, "retries": 1,
        "on_error": {"fallback": {"answer": "I am unable to answer right now."}}}],
     "return": "$answer"}

Omitted inputs bind `$input.<name>`; `return` defaults to the last step's output. A value that
is not a `$` reference is a constant; lists and objects of bindings are allowed.
`on_error.compensate` is a step object run instead of the failed step; its outputs must cover
the failed step's, since later steps keep referring to the failed step's id.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cognitive.engine.plan import (
    INPUT,
    Binding,
    Const,
    InputUse,
    ListOf,
    ObjectOf,
    PipelinePlan,
    Ref,
    Stage,
    StepPlan,
)
from cognitive.engine.values import ValueMismatch, check_value, type_fits
from cognitive.errors import InvalidInput
from cognitive.json_limits import check_json
from cognitive.signatures import Field, TypeExpr, parse_type

MAX_STEPS = 50
MAX_PARALLEL = 16
MAX_RETRIES = 5
MAX_K = 50
MAX_BINDING_DEPTH = 4
RETRIEVAL_METHODS = ("bm25", "vector")

_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_REF_RE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?$")

_PASSAGES = Field("passages", parse_type("list[str]"))
BUILTINS: dict[str, tuple[tuple[Field, ...], tuple[Field, ...]]] = {
    "retrieve": ((Field("query", parse_type("str")),), (_PASSAGES,)),
    "merge": ((Field("lists", parse_type("list[list[str]]")),), (_PASSAGES,)),
}
_COMMON_KEYS = {"id", "inputs", "retries", "on_error"}
_STEP_KEYS = {
    "module": _COMMON_KEYS | {"module"},
    "retrieve": _COMMON_KEYS | {"builtin", "corpus", "method", "k"},
    "merge": _COMMON_KEYS | {"builtin", "k"},
}


@dataclass(frozen=True)
class ModuleSignature:
    """The parsed fields of a module's signature, as the validator needs them."""

    name: str
    inputs: tuple[Field, ...]
    outputs: tuple[Field, ...]


ModuleLookup = Callable[[str], ModuleSignature | None]
CorpusLookup = Callable[[str], bool]


def _fail(path: str, message: str) -> InvalidInput:
    return InvalidInput(f"{path}: {message}" if path else message, {"path": path})


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class _Scope:
    """What a step may reference: outputs of steps in earlier stages."""

    outputs: dict[str, tuple[Field, ...]] = field(default_factory=dict)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    compensations: dict[str, str] = field(default_factory=dict)  # compensation id -> the step it stands in for
    # Every id in the spec with its position, for forward-reference messages.
    declared: dict[str, str] = field(default_factory=dict)
    stage_of: dict[str, int] = field(default_factory=dict)


class _Compiler:
    def __init__(
        self, modules: ModuleLookup, corpus_exists: CorpusLookup | None, raw_references: dict[str, set[str]]
    ) -> None:
        self.modules = modules
        self.corpus_exists = corpus_exists
        self.raw_references = raw_references
        self.scope = _Scope()
        self.input_uses: dict[str, list[InputUse]] = {}
        self.step_count = 0

    # -- top level

    def compile(self, spec: Any) -> PipelinePlan:
        if not isinstance(spec, dict):
            raise _fail("", "the pipeline must be a JSON object")
        check_json(spec)  # a spec from the admin or Python has not been through the API's parser
        for key in spec:
            if key not in ("steps", "return"):
                raise _fail(str(key), f"unknown pipeline key '{key}'; a pipeline has 'steps' and 'return'")
        steps = spec.get("steps")
        if not isinstance(steps, list) or not steps:
            raise _fail("steps", "'steps' must be a non-empty list of steps")
        self._declare_all(steps)
        stages = tuple(self._stage(entry, index) for index, entry in enumerate(steps))
        returns = self._returns(spec, stages)
        uses = {name: tuple(found) for name, found in self.input_uses.items()}
        return PipelinePlan(stages=stages, returns=returns, input_uses=uses)

    def _declare_all(self, steps: list[Any]) -> None:
        """First pass: every id and where it is, so references to later steps get a precise message."""
        for index, entry in enumerate(steps):
            path = f"steps[{index}]"
            self._declare(entry, path, index)
            if isinstance(entry, dict) and isinstance(entry.get("parallel"), list):
                for child_index, child in enumerate(entry["parallel"]):
                    self._declare(child, f"{path}.parallel[{child_index}]", index)

    def _declare(self, entry: Any, path: str, stage: int, replaces: str | None = None) -> None:
        if not isinstance(entry, dict):
            raise _fail(path, "a step must be a JSON object")
        step_id = entry.get("id")
        if not isinstance(step_id, str) or not _ID_RE.match(step_id):
            raise _fail(f"{path}.id", "each step needs an 'id': letters, digits and '_', not starting with a digit")
        if step_id == INPUT:
            raise _fail(f"{path}.id", "'input' is reserved for the program input ($input.<field>)")
        if step_id in self.scope.declared:
            raise _fail(f"{path}.id", f"duplicate step id '{step_id}' (first used at {self.scope.declared[step_id]})")
        self.scope.declared[step_id] = path
        self.scope.stage_of[step_id] = stage
        if replaces is not None:
            self.scope.compensations[step_id] = replaces
        self.step_count += 1
        if self.step_count > MAX_STEPS:
            raise _fail(path, f"a pipeline has at most {MAX_STEPS} steps")
        on_error = entry.get("on_error")
        compensate = on_error.get("compensate") if isinstance(on_error, dict) else None
        if isinstance(compensate, dict):
            self._declare(compensate, f"{path}.on_error.compensate", stage, replaces=step_id)

    # -- stages

    def _stage(self, entry: dict[str, Any], index: int) -> Stage:
        path = f"steps[{index}]"
        if "parallel" in entry:
            return self._group(entry, path, index)
        step = self._step(entry, path, index)
        self._publish(step)
        return Stage(id=step.id, path=path, steps=(step,), parallel=False)

    def _group(self, entry: dict[str, Any], path: str, index: int) -> Stage:
        for key in entry:
            if key not in ("id", "parallel"):
                raise _fail(f"{path}.{key}", f"a parallel group has only 'id' and 'parallel', not '{key}'")
        children = entry["parallel"]
        if not isinstance(children, list) or not children:
            raise _fail(f"{path}.parallel", "'parallel' must be a non-empty list of steps")
        if len(children) > MAX_PARALLEL:
            raise _fail(f"{path}.parallel", f"a parallel group has at most {MAX_PARALLEL} steps")
        steps: list[StepPlan] = []
        for child_index, child in enumerate(children):
            child_path = f"{path}.parallel[{child_index}]"
            if "parallel" in child:
                raise _fail(f"{child_path}.parallel", "parallel groups cannot be nested")
            steps.append(self._step(child, child_path, index))
        # Published only after the whole group: siblings run at the same time.
        for step in steps:
            self._publish(step)
        self.scope.groups[entry["id"]] = tuple(step.id for step in steps)
        return Stage(id=entry["id"], path=path, steps=tuple(steps), parallel=True)

    def _publish(self, step: StepPlan) -> None:
        self.scope.outputs[step.id] = step.outputs

    # -- steps

    def _step(self, entry: dict[str, Any], path: str, stage: int, *, compensation: bool = False) -> StepPlan:
        kind = self._kind(entry, path)
        for key in entry:
            if key not in _STEP_KEYS[kind]:
                raise _fail(f"{path}.{key}", f"unknown key '{key}' for a {kind} step")
        step_id = entry["id"]
        if kind == "module":
            module, inputs, outputs = self._module(entry, path)
            options: dict[str, Any] = {}
        else:
            module = None
            inputs, outputs = BUILTINS[kind]
            options = self._builtin_options(kind, entry, path)
        bindings = self._bindings(entry.get("inputs"), inputs, f"{path}.inputs", step_id, stage)
        retries = self._retries(entry.get("retries", 0), f"{path}.retries")
        fallback, compensate = None, None
        if "on_error" in entry:
            if compensation:
                raise _fail(f"{path}.on_error", "a compensation step cannot have its own on_error")
            fallback, compensate = self._on_error(entry["on_error"], f"{path}.on_error", outputs, stage)
        return StepPlan(
            id=step_id, path=path, kind=kind, inputs=inputs, outputs=outputs, bindings=bindings, module=module,
            options=options, retries=retries, fallback=fallback, compensate=compensate,
        )

    def _kind(self, entry: dict[str, Any], path: str) -> str:
        has_module, has_builtin = "module" in entry, "builtin" in entry
        if has_module == has_builtin:
            raise _fail(path, "a step names a 'module' or a 'builtin' (retrieve, merge), or is a 'parallel' group")
        if has_builtin:
            builtin = entry["builtin"]
            if not isinstance(builtin, str) or builtin not in BUILTINS:
                choices = ", ".join(BUILTINS)
                raise _fail(f"{path}.builtin", f"unknown builtin {_describe(builtin)}; choose one of {choices}")
            return str(builtin)
        return "module"

    def _module(self, entry: dict[str, Any], path: str) -> tuple[str, tuple[Field, ...], tuple[Field, ...]]:
        name = entry["module"]
        if not isinstance(name, str) or not name:
            raise _fail(f"{path}.module", "'module' must be the name of one of your modules")
        found = self.modules(name)
        if found is None:
            raise _fail(f"{path}.module", f"unknown module '{name[:200]}'")
        return name, found.inputs, found.outputs

    def _builtin_options(self, kind: str, entry: dict[str, Any], path: str) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if "k" in entry or kind == "retrieve":
            k = entry.get("k", 5)
            if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
                raise _fail(f"{path}.k", f"'k' must be an integer from 1 to {MAX_K}")
            options["k"] = k
        if kind != "retrieve":
            return options
        method = entry.get("method", "bm25")
        if method not in RETRIEVAL_METHODS:
            raise _fail(f"{path}.method", f"'method' must be one of {', '.join(RETRIEVAL_METHODS)}")
        corpus = entry.get("corpus")
        if not isinstance(corpus, str) or not corpus:
            raise _fail(f"{path}.corpus", "a retrieve step needs 'corpus': the name of one of your corpora")
        if self.corpus_exists is None:
            raise _fail(f"{path}.builtin", "retrieval is not available on this server")
        if not self.corpus_exists(corpus):
            raise _fail(f"{path}.corpus", f"unknown corpus '{corpus[:200]}'")
        options.update(method=method, corpus=corpus)
        return options

    def _retries(self, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES:
            raise _fail(path, f"'retries' must be an integer from 0 to {MAX_RETRIES}")
        return value

    # -- bindings

    def _bindings(
        self, given: Any, inputs: tuple[Field, ...], path: str, step_id: str, stage: int
    ) -> dict[str, Binding]:
        if given is None:
            given = {}
        if not isinstance(given, dict):
            raise _fail(path, "'inputs' must be a JSON object mapping input fields to bindings")
        names = [f.name for f in inputs]
        for name in given:
            if name not in names:
                raise _fail(f"{path}.{name}", f"unknown input '{name}'; this step takes: {', '.join(names)}")
        bindings: dict[str, Binding] = {}
        for input_field in inputs:
            field_path = f"{path}.{input_field.name}"
            raw = given.get(input_field.name, f"${INPUT}.{input_field.name}")
            bindings[input_field.name] = self._binding(raw, input_field.type, field_path, step_id, stage, depth=0)
        return bindings

    def _binding(
        self, raw: Any, wanted: TypeExpr | None, path: str, step_id: str | None, stage: int, depth: int
    ) -> Binding:
        if depth > MAX_BINDING_DEPTH:
            raise _fail(path, f"bindings nest at most {MAX_BINDING_DEPTH} levels deep")
        if isinstance(raw, str) and raw.startswith("$"):
            return self._reference(raw, wanted, path, step_id, stage)
        if isinstance(raw, list) and any(_has_reference(item) for item in raw):
            item_type = _item_type(wanted, path)
            items = [
                self._binding(item, item_type, f"{path}[{i}]", step_id, stage, depth + 1) for i, item in enumerate(raw)
            ]
            return ListOf(tuple(items))
        if isinstance(raw, dict) and any(_has_reference(item) for item in raw.values()):
            value_type = _value_type(wanted, path)
            items = [
                (str(k), self._binding(v, value_type, f"{path}.{k}", step_id, stage, depth + 1)) for k, v in raw.items()
            ]
            return ObjectOf(tuple(items))
        if wanted is not None:
            try:
                raw = check_value(raw, wanted)
            except ValueMismatch as exc:
                raise _fail(path, f"constant {_describe(raw)} does not fit {wanted.render()}: {exc.message}") from None
        return Const(raw)

    def _reference(self, text: str, wanted: TypeExpr | None, path: str, step_id: str | None, stage: int) -> Ref:
        match = _REF_RE.match(text)
        if not match:
            raise _fail(path, f"bad reference {_describe(text)}; use $input.<field>, $<step>.<field> or $<step>")
        source, field_name = match.group(1), match.group(2)
        if source == INPUT:
            if field_name is None:
                raise _fail(path, "bind one input field: $input.<field>")
            self.input_uses.setdefault(field_name, []).append(InputUse(wanted, path))
            return Ref(INPUT, field_name, text)
        outputs = self._visible_outputs(source, path, step_id, stage)
        if field_name is None:
            if wanted is not None:
                fields = ", ".join(f"${source}.{f.name}" for f in outputs)
                raise _fail(path, f"bind one output field of step '{source}': {fields}")
            return Ref(source, None, text)
        produced = next((f for f in outputs if f.name == field_name), None)
        if produced is None:
            names = ", ".join(f.name for f in outputs)
            raise _fail(path, f"step '{source}' has no output '{field_name}'; it has: {names}")
        if wanted is not None and not type_fits(produced.type, wanted):
            raise _fail(
                path,
                f"type mismatch: {text} is {produced.type.render()}, but this input needs {wanted.render()}",
            )
        return Ref(source, field_name, text)

    def _visible_outputs(self, source: str, path: str, step_id: str | None, stage: int) -> tuple[Field, ...]:
        scope = self.scope
        if source in scope.outputs:
            return scope.outputs[source]
        if source in scope.groups:
            members = ", ".join(scope.groups[source])
            raise _fail(path, f"'{source}' is a parallel group; bind one of its steps: {members}")
        if source in scope.compensations:
            raise _fail(path, f"'{source}' stands in for step '{scope.compensations[source]}'; reference that step")
        if source == step_id:
            raise _fail(path, f"cycle: step '{source}' cannot use its own output")
        if source in scope.declared:
            if scope.stage_of.get(source) == stage:
                raise _fail(
                    path,
                    f"steps of a parallel group run at the same time; '{source}' is in the same group and its "
                    "output is not available yet",
                )
            raise _fail(path, self._forward_message(source, step_id))
        raise _fail(path, f"unbound reference: there is no step '{source}'")

    def _forward_message(self, source: str, step_id: str | None) -> str:
        later = self.scope.declared[source]
        if step_id is not None and self._reaches(source, step_id):
            return f"cycle: '{step_id}' needs '{source}' ({later}), which needs '{step_id}'"
        return f"forward reference: step '{source}' runs later ({later}); a step can only use earlier steps"

    def _reaches(self, start: str, target: str) -> bool:
        """Whether `start`'s spec (not yet compiled) references `target`, directly or through later steps."""
        raw_refs = self.raw_references
        seen: set[str] = set()
        pending = [start]
        while pending:
            current = pending.pop()
            if current == target:
                return True
            if current in seen:
                continue
            seen.add(current)
            pending.extend(raw_refs.get(current, ()))
        return False

    # -- on_error and return

    def _on_error(
        self, raw: Any, path: str, outputs: tuple[Field, ...], stage: int
    ) -> tuple[dict[str, Any] | None, StepPlan | None]:
        if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in ("fallback", "compensate"):
            raise _fail(path, "'on_error' must be {\"fallback\": <output>} or {\"compensate\": <step>}")
        if "fallback" in raw:
            return self._fallback(raw["fallback"], f"{path}.fallback", outputs), None
        compensation = raw["compensate"]
        compensate_path = f"{path}.compensate"
        if not isinstance(compensation, dict):
            raise _fail(compensate_path, "'compensate' must be a step object, run instead of the failed step")
        if "parallel" in compensation:
            raise _fail(f"{compensate_path}.parallel", "a compensation is a single step, not a parallel group")
        step = self._step(compensation, compensate_path, stage, compensation=True)
        for wanted in outputs:
            produced = next((f for f in step.outputs if f.name == wanted.name), None)
            if produced is None:
                raise _fail(compensate_path, f"the compensation step does not produce output '{wanted.name}'")
            if not type_fits(produced.type, wanted.type):
                raise _fail(
                    compensate_path,
                    f"type mismatch: the compensation's '{wanted.name}' is {produced.type.render()}, "
                    f"the step's is {wanted.type.render()}",
                )
        return None, step

    def _fallback(self, raw: Any, path: str, outputs: tuple[Field, ...]) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise _fail(path, "a fallback must be a JSON object with the step's output fields")
        names = [f.name for f in outputs]
        for key in raw:
            if key not in names:
                raise _fail(f"{path}.{key}", f"the step has no output '{key}'; its outputs: {', '.join(names)}")
        value: dict[str, Any] = {}
        for output in outputs:
            if output.name not in raw:
                if output.type.name == "Optional":
                    value[output.name] = None
                    continue
                raise _fail(path, f"the fallback is missing output '{output.name}' ({output.type.render()})")
            try:
                value[output.name] = check_value(raw[output.name], output.type)
            except ValueMismatch as exc:
                raise _fail(
                    f"{path}.{output.name}", f"does not fit {output.type.render()}: {exc.message}"
                ) from None
        return value

    def _returns(self, spec: dict[str, Any], stages: tuple[Stage, ...]) -> Binding:
        if "return" in spec:
            return self._binding(spec["return"], None, "return", None, len(stages), depth=0)
        last = stages[-1]
        if not last.parallel:
            return Ref(last.id, None, f"${last.id}")
        return ObjectOf(tuple((step.id, Ref(step.id, None, f"${step.id}")) for step in last.steps))


def _has_reference(value: Any, depth: int = 0) -> bool:
    if depth > MAX_BINDING_DEPTH + 1:
        return False
    if isinstance(value, str):
        return value.startswith("$")
    if isinstance(value, list):
        return any(_has_reference(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return any(_has_reference(item, depth + 1) for item in value.values())
    return False


def _strip_optional(wanted: TypeExpr) -> TypeExpr:
    inner = wanted.args[0] if wanted.name == "Optional" else wanted
    assert isinstance(inner, TypeExpr)
    return inner


def _item_type(wanted: TypeExpr | None, path: str) -> TypeExpr | None:
    if wanted is None:
        return None
    container = _strip_optional(wanted)
    if container.name == "list":
        item = container.args[0] if container.args else None
        return item if isinstance(item, TypeExpr) else None
    if container.name == "tuple" and len(container.args) == 2 and container.args[1] is Ellipsis:
        item = container.args[0]
        return item if isinstance(item, TypeExpr) else None
    raise _fail(path, f"a list of bindings needs a list-typed input, this one is {wanted.render()}")


def _value_type(wanted: TypeExpr | None, path: str) -> TypeExpr | None:
    if wanted is None:
        return None
    container = _strip_optional(wanted)
    if container.name == "dict":
        if container.args and isinstance(container.args[0], TypeExpr) and container.args[0].name != "str":
            raise _fail(path, f"an object of bindings needs dict[str, ...], this input is {wanted.render()}")
        value = container.args[1] if container.args else None
        return value if isinstance(value, TypeExpr) else None
    raise _fail(path, f"an object of bindings needs a dict-typed input, this one is {wanted.render()}")


def _raw_references(spec: dict[str, Any]) -> dict[str, set[str]]:
    """step id -> ids its raw inputs mention, for explaining cycles before anything is compiled."""
    found: dict[str, set[str]] = {}

    def collect(entry: Any) -> None:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            return
        mentioned: set[str] = set()
        _mentions(entry.get("inputs"), mentioned, 0)
        found[entry["id"]] = mentioned
        if isinstance(entry.get("parallel"), list):
            for child in entry["parallel"]:
                collect(child)

    for entry in spec.get("steps") or []:
        collect(entry)
    return found


def _mentions(value: Any, into: set[str], depth: int) -> None:
    if depth > MAX_BINDING_DEPTH + 1:
        return
    if isinstance(value, str):
        match = _REF_RE.match(value)
        if match and match.group(1) != INPUT:
            into.add(match.group(1))
    elif isinstance(value, list):
        for item in value:
            _mentions(item, into, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            _mentions(item, into, depth + 1)


def compile_pipeline(
    spec: Any, *, modules: ModuleLookup, corpus_exists: CorpusLookup | None = None
) -> PipelinePlan:
    """Validate `spec` and return the plan; raises InvalidInput with `extra.path` on the first problem."""
    has_steps = isinstance(spec, dict) and isinstance(spec.get("steps"), list)
    return _Compiler(modules, corpus_exists, _raw_references(spec) if has_steps else {}).compile(spec)


def program_input_fields(plan: PipelinePlan) -> list[dict[str, Any]]:
    """The program's input fields as inferred from `$input.<name>` uses (for docs and the prompt view)."""
    fields = []
    for name, uses in sorted(plan.input_uses.items()):
        types = sorted({use.type.render() for use in uses if use.type is not None})
        fields.append({"name": name, "types": types, "required": _required(uses)})
    return fields


def _required(uses: tuple[InputUse, ...]) -> bool:
    return any(use.type is not None and use.type.name != "Optional" for use in uses)


def check_program_input(plan: PipelinePlan, values: Any) -> dict[str, Any]:
    """Validate a run's input against every place that reads it; InvalidInput names the field."""
    if not isinstance(values, Mapping):
        raise InvalidInput("input must be a JSON object", {"field": None})
    for name in values:
        if name not in plan.input_uses:
            expected = ", ".join(sorted(plan.input_uses)) or "none"
            raise InvalidInput(f"unknown input field '{name}'; this program takes: {expected}", {"field": name})
    checked: dict[str, Any] = {}
    for name, uses in plan.input_uses.items():
        if name not in values:
            if _required(uses):
                wanted = next(u.type for u in uses if u.type is not None and u.type.name != "Optional")
                assert wanted is not None
                raise InvalidInput(f"missing input field '{name}' ({wanted.render()})", {"field": name})
            continue
        value = values[name]
        for use in uses:
            if use.type is None:
                continue
            try:
                value = check_value(value, use.type)
            except ValueMismatch as exc:
                raise InvalidInput(
                    f"input field '{name}{exc.where}': {exc.message}", {"field": name, "at": exc.where}
                ) from None
        checked[name] = value
    return checked
