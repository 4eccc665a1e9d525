"""Datasets and their examples: create, import (all or nothing), export, and feedback from executions.

Import formats, one example per record, each `{"inputs": {...}, "outputs": {...}, "split": "train"|"val"}`
(`split` may be left out and defaults to `train`):

- `jsonl`: one JSON object per line; blank lines are skipped; `line` in an error is the line in the file.
- `json`: a JSON list of such objects; `line` in an error is the 1-based position in the list.
- `csv`: a header row, then one example per row. A column `in.<name>` is the input `<name>`, `out.<name>`
  the expected output `<name>`, `split` the split; any other column is an error. Cells are strings.
  `line` in an error is the line in the file (the header is line 1).

Every record is checked before anything is written; one bad record means nothing is imported and the
error lists every bad record.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from cognitive import selectors
from cognitive.errors import Conflict, InvalidInput, PermissionDenied
from cognitive.json_limits import json_problem
from cognitive.models import (
    Dataset,
    Example,
    ExampleSource,
    ExampleSplit,
    Execution,
    ExecutionStatus,
    Program,
)
from cognitive.services.common import save_unique

IMPORT_FORMATS = ("jsonl", "csv", "json")
MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_IMPORT_EXAMPLES = 10_000
MAX_REPORTED_ERRORS = 100
MAX_NAME_CHARS = 200
_RECORD_KEYS = frozenset({"inputs", "outputs", "split"})
_SPLITS = tuple(ExampleSplit.values)


class _BadRecord(Exception):
    pass


def dataset_create(*, owner: AbstractBaseUser, name: str, program: Program) -> Dataset:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name must be a non-empty string", {"field": "name"})
    if len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"name is longer than {MAX_NAME_CHARS} characters", {"field": "name"})
    if not selectors.program_list(user=owner).filter(pk=program.pk).exists():
        raise InvalidInput("program not found", {"field": "program"})
    return save_unique(Dataset(owner=owner, name=name, program=program), what="a dataset")


def dataset_delete(*, dataset: Dataset) -> None:
    dataset.delete()


def _touch(dataset: Dataset) -> None:
    dataset.changed_at = timezone.now()
    Dataset.objects.filter(pk=dataset.pk).update(changed_at=dataset.changed_at, updated_at=dataset.changed_at)


# --------------------------------------------------------------------------- import


def _check_object(value: Any, key: str, *, strings_only: bool = False) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _BadRecord(f"'{key}' must be a JSON object")
    if not value:
        raise _BadRecord(f"'{key}' must name at least one field")
    for name, item in value.items():
        if not name.strip():
            raise _BadRecord(f"'{key}' has an empty field name")
        if isinstance(item, float) and not math.isfinite(item):
            raise _BadRecord(f"'{key}.{name}' is not a finite number")
        if strings_only and not isinstance(item, str):
            raise _BadRecord(f"'{key}.{name}' must be a string")
    return value


def _example_from_record(record: Any) -> Example:
    if not isinstance(record, dict):
        raise _BadRecord('expected an object {"inputs": {...}, "outputs": {...}, "split": "train"|"val"}')
    problem = json_problem(record)
    if problem is not None:
        raise _BadRecord(f"{problem[0]} {problem[1]}")
    unknown = sorted(set(record) - _RECORD_KEYS)
    if unknown:
        raise _BadRecord(f"unknown key(s) {', '.join(map(repr, unknown))}; allowed: inputs, outputs, split")
    for key in ("inputs", "outputs"):
        if key not in record:
            raise _BadRecord(f"'{key}' is missing")
    split = record.get("split", ExampleSplit.TRAIN)
    if split not in _SPLITS:
        raise _BadRecord(f"split must be one of {', '.join(_SPLITS)}, got {split!r}")
    return Example(
        inputs=_check_object(record["inputs"], "inputs"),
        outputs=_check_object(record["outputs"], "outputs"),
        split=split,
        source=ExampleSource.IMPORT,
    )


def _jsonl_records(text: str) -> Iterable[tuple[int, Any]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except (ValueError, RecursionError) as exc:
            yield number, _BadRecord(f"not valid JSON: {exc}")


def _json_records(text: str) -> Iterable[tuple[int, Any]]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"the file is not valid JSON: {exc}", {"format": "json"}) from None
    return _list_records(data)


def _list_records(data: Any) -> Iterable[tuple[int, Any]]:
    if not isinstance(data, list):
        raise InvalidInput("expected a JSON list of examples", {"format": "json"})
    return enumerate(data, start=1)


def _csv_columns(header: list[str]) -> list[tuple[str, str]]:
    """(target, field) per column: target is inputs, outputs or split."""
    columns: list[tuple[str, str]] = []
    bad: list[str] = []
    for raw in header:
        name = raw.strip()
        if name == "split":
            columns.append(("split", ""))
        elif name.startswith("in.") and name[3:].strip():
            columns.append(("inputs", name[3:].strip()))
        elif name.startswith("out.") and name[4:].strip():
            columns.append(("outputs", name[4:].strip()))
        else:
            bad.append(raw)
    if bad:
        raise InvalidInput(
            "CSV header: every column must be 'in.<field>', 'out.<field>' or 'split'; "
            f"unexpected: {', '.join(map(repr, bad))}",
            {"errors": [{"line": 1, "message": f"unexpected column {c!r}"} for c in bad]},
        )
    fields = [c for c in columns if c[0] != "split"]
    if len(set(fields)) != len(fields) or [c[0] for c in columns].count("split") > 1:
        duplicate = {"errors": [{"line": 1, "message": "duplicate column"}]}
        raise InvalidInput("CSV header: a column appears twice", duplicate)
    return columns


def _csv_records(text: str) -> Iterable[tuple[int, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise InvalidInput(f"CSV header: {exc}", {"errors": [{"line": 1, "message": str(exc)}]}) from None
    columns = _csv_columns(header)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, _BadRecord(f"not valid CSV: {exc}")
            continue
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            yield reader.line_num, _BadRecord(f"expected {len(columns)} cells, got {len(row)}")
            continue
        record: dict[str, Any] = {"inputs": {}, "outputs": {}}
        for (target, field), cell in zip(columns, row, strict=True):
            if target == "split":
                if cell.strip():
                    record["split"] = cell.strip()
            else:
                record[target][field] = cell
        yield reader.line_num, record


def _decode(content: bytes | str) -> str:
    if isinstance(content, bytes):
        try:
            return content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"the file is not UTF-8 text (byte {exc.start})", {}) from None
    return content.removeprefix("\ufeff")


def _parse(content: bytes | str | list[Any], format: str) -> Iterable[tuple[int, Any]]:
    if isinstance(content, list):
        return _list_records(content)
    size = len(content.encode() if isinstance(content, str) else content)
    if size > MAX_IMPORT_BYTES:
        raise InvalidInput(
            f"the file is {size} bytes; at most {MAX_IMPORT_BYTES} bytes may be imported at once",
            {"limit_bytes": MAX_IMPORT_BYTES},
        )
    text = _decode(content)
    return {"jsonl": _jsonl_records, "json": _json_records, "csv": _csv_records}[format](text)


def dataset_import(*, dataset: Dataset, content: bytes | str | list[Any], format: str) -> int:
    """Add every example in `content` (see the module docstring), or none: returns how many were added."""
    if format not in IMPORT_FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(IMPORT_FORMATS)}, got {format!r}", {"field": "format"})
    examples: list[Example] = []
    errors: list[dict[str, Any]] = []
    count = 0
    for line, record in _parse(content, format):
        count += 1
        if count > MAX_IMPORT_EXAMPLES:
            raise InvalidInput(
                f"more than {MAX_IMPORT_EXAMPLES} examples; import them in several files",
                {"limit_examples": MAX_IMPORT_EXAMPLES},
            )
        try:
            if isinstance(record, _BadRecord):
                raise record
            example = _example_from_record(record)
        except _BadRecord as exc:
            errors.append({"line": line, "message": str(exc)})
            continue
        example.dataset = dataset
        examples.append(example)
    if errors:
        noun = "bad line" if len(errors) == 1 else "bad lines"
        extra: dict[str, Any] = {"errors": errors[:MAX_REPORTED_ERRORS], "error_count": len(errors)}
        raise InvalidInput(f"{len(errors)} {noun}; nothing was imported", extra)
    if not examples:
        raise InvalidInput("the file holds no examples", {})
    with transaction.atomic():
        Example.objects.bulk_create(examples, batch_size=500)
        _touch(dataset)
    return len(examples)


def dataset_export_jsonl(dataset: Dataset) -> str:
    """Every example as a JSONL line that `dataset_import(format="jsonl")` reads back."""
    lines = (
        json.dumps({"inputs": e.inputs, "outputs": e.outputs, "split": e.split}, ensure_ascii=False)
        for e in selectors.example_list(dataset=dataset).iterator()
    )
    return "".join(f"{line}\n" for line in lines)


# --------------------------------------------------------------------------- feedback


def _feedback_dataset(program: Program) -> Dataset:
    """The program's oldest dataset, or a new `<program> feedback` one. Call with the program row locked."""
    dataset = Dataset.objects.filter(program=program, owner_id=program.owner_id).order_by("created_at").first()
    if dataset is not None:
        return dataset
    name = f"{program.name} feedback"[:MAX_NAME_CHARS]
    dataset = Dataset(owner_id=program.owner_id, program=program, name=name)
    return save_unique(dataset, what="a dataset")


def _check_feedback(execution: Execution, owner: AbstractBaseUser, score: Any, corrected_output: Any) -> None:
    if execution.owner_id != owner.pk:
        raise PermissionDenied("only the user who ran an execution can give feedback on it")
    if execution.parent_id is not None:
        raise InvalidInput(
            f"execution {execution.pk} is a step of execution {execution.parent_id}; give feedback on that one",
            {"parent": str(execution.parent_id)},
        )
    if execution.program_id is None:
        raise InvalidInput("feedback is for program executions; this one ran a single module", {})
    if execution.status != ExecutionStatus.COMPLETED:
        raise Conflict(
            f"only completed executions can become examples; this one is {execution.status}",
            {"status": execution.status},
        )
    is_number = isinstance(score, int | float) and not isinstance(score, bool)
    if score is not None and not (is_number and math.isfinite(score)):
        raise InvalidInput("score must be a finite number", {"field": "score"})
    if corrected_output is not None and (not isinstance(corrected_output, dict) or not corrected_output):
        raise InvalidInput(
            "corrected_output must be a non-empty JSON object of output fields", {"field": "corrected_output"}
        )
    if corrected_output is None and (not isinstance(execution.output, dict) or not execution.output):
        raise InvalidInput("the execution has no output to keep; send corrected_output", {"field": "corrected_output"})


def execution_feedback(
    *,
    execution: Execution,
    owner: AbstractBaseUser,
    score: float | None = None,
    corrected_output: dict[str, Any] | None = None,
) -> Example:
    """Turn a completed program run into a training example of its program's dataset.

    Once per execution: feedback again updates the same example (its score and, when sent, its outputs).
    """
    _check_feedback(execution, owner, score, corrected_output)
    with transaction.atomic():
        # Serialises feedback per program, so concurrent calls neither create two feedback datasets
        # nor two examples for one execution.
        program = Program.objects.select_for_update().get(pk=execution.program_id)
        example = Example.objects.filter(execution=execution, source=ExampleSource.FEEDBACK).first()
        if example is None:
            example = Example(
                dataset=_feedback_dataset(program),
                execution=execution,
                source=ExampleSource.FEEDBACK,
                split=ExampleSplit.TRAIN,
                inputs=execution.input,
                outputs=corrected_output or execution.output,
                score=score,
            )
        else:
            if corrected_output is not None:
                example.outputs = corrected_output
            if score is not None:
                example.score = score
        example.save()
        _touch(example.dataset)
    return example
