"""Limits on JSON values from outside: nesting depth, and no NUL character anywhere.

PostgreSQL stores neither a NUL in text nor `\\u0000` in jsonb, so such a value failed at the
database (a 500) long after it was accepted; deep nesting overflowed Python's recursion at ~1,000
levels and made every later run of a stored spec fail. Both are answered up front with a 400 that
names the JSON path of the first offending value.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from cognitive.errors import InvalidInput


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def json_problem(value: Any, *, max_depth: int | None = None) -> tuple[str, str] | None:
    """(path, what is wrong) for the first NUL or too-deep value, or None. Iterative: any depth is safe."""
    limit = settings.DSPEX_JSON_MAX_DEPTH if max_depth is None else max_depth
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return path, "contains a NUL character (\\u0000), which cannot be stored"
        elif isinstance(item, dict | list):
            if depth >= limit:
                return path, f"is nested deeper than {limit} levels (DSPEX_JSON_MAX_DEPTH)"
            children = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in reversed(list(children)):
                child_path = _join(path, key)
                if isinstance(key, str) and "\x00" in key:
                    return child_path, "has a key with a NUL character (\\u0000), which cannot be stored"
                stack.append((child, child_path, depth + 1))
    return None


def check_json(value: Any, *, where: str = "") -> Any:
    """Raise InvalidInput naming the path of the first NUL or too-deep value; return the value."""
    found = json_problem(value)
    if found is not None:
        path, problem = found
        full = _join(where, path) if where and path else (where or path)
        raise InvalidInput(f"{full or 'the body'} {problem}", {"path": full})
    return value
