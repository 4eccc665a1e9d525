"""Pipeline specs may name a module or a corpus by id; the stored spec names them, as the engine reads them."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

from cognitive.json_limits import check_json
from cognitive.models import Corpus, Module

_REFERENCES = {"module": Module, "corpus": Corpus}


def _entries(steps: Any) -> Iterator[dict[str, Any]]:
    """Every step object of a spec: top-level steps, members of parallel groups, compensation steps."""
    if not isinstance(steps, list):
        return
    for entry in steps:
        if not isinstance(entry, dict):
            continue
        yield entry
        yield from _entries(entry.get("parallel"))
        on_error = entry.get("on_error")
        if isinstance(on_error, dict) and isinstance(on_error.get("compensate"), dict):
            yield from _entries([on_error["compensate"]])


def _as_id(value: Any) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def pipeline_with_names(*, owner: Any, pipeline: Any) -> Any:
    """A copy of the spec in which each id of one of the owner's modules or corpora is replaced by its name.

    An id the owner has no row for is left as written, so compiling reports it as unknown, the same
    way whether the row does not exist or is someone else's. A name that merely looks like an id and
    matches no id is left for the compiler to find by name.
    """
    if not isinstance(pipeline, dict):
        return pipeline
    spec = copy.deepcopy(check_json(pipeline, where="pipeline"))
    wanted: dict[str, dict[uuid.UUID, list[dict[str, Any]]]] = {key: {} for key in _REFERENCES}
    for entry in _entries(spec.get("steps")):
        for key in _REFERENCES:
            found = _as_id(entry.get(key))
            if found is not None:
                wanted[key].setdefault(found, []).append(entry)
    for key, by_id in wanted.items():
        if not by_id:
            continue
        names = dict(_REFERENCES[key].objects.filter(owner=owner, pk__in=by_id).values_list("pk", "name"))
        for found, entries in by_id.items():
            if found in names:
                for entry in entries:
                    entry[key] = names[found]
    return spec
