"""Per-request batch loading: a relation is loaded for every row the request has seen, in one query.

GraphQL resolves a field once per row; loading a relation there would cost a query per row
(N+1). A resolver that produces rows registers them here; the first row asked for its relation
loads it for every registered row at once, so a level of the tree costs one query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from cognitive import selectors


class SiblingLoader:
    def __init__(self, load: Callable[[list[Any]], dict[Any, Any]]) -> None:
        self._load = load
        self._pending: dict[Any, Any] = {}
        self._loaded: dict[Any, Any] = {}

    def register(self, rows: Iterable[Any]) -> None:
        for row in rows:
            if row.pk not in self._loaded:
                self._pending[row.pk] = row

    def get(self, row: Any) -> Any:
        if row.pk not in self._loaded:
            self._pending[row.pk] = row
            batch = list(self._pending.values())
            self._pending.clear()
            found = self._load(batch)
            for item in batch:
                self._loaded[item.pk] = found.get(item.pk)
        return self._loaded[row.pk]


class Loaders:
    """The loaders of one request (kept on its context)."""

    def __init__(self) -> None:
        self.children = SiblingLoader(lambda rows: selectors.children_of_executions([row.pk for row in rows]))
        self.modules = SiblingLoader(selectors.modules_of_programs)
        self.module_performance = SiblingLoader(lambda rows: selectors.module_performance([row.pk for row in rows]))
        self.stats = SiblingLoader(lambda rows: selectors.program_stats([row.pk for row in rows]))

    def executions_seen(self, rows: list[Any]) -> list[Any]:
        self.children.register(rows)
        return rows

    def modules_seen(self, rows: list[Any]) -> list[Any]:
        self.module_performance.register(rows)
        return rows

    def programs_seen(self, rows: list[Any]) -> list[Any]:
        self.modules.register(rows)
        self.stats.register(rows)
        return rows
