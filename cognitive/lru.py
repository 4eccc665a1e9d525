"""A small thread-safe LRU for per-process caches (parsed indexes, compiled plans, prepared modules)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

# Told of every lookup in a named cache (name, hit); the application counts them (cache metrics).
_lookup_observers: list[Callable[[str, bool], None]] = []


def observe_lookups(observer: Callable[[str, bool], None]) -> None:
    if observer not in _lookup_observers:
        _lookup_observers.append(observer)


class LRUCache(Generic[V]):
    """Values are built outside the lock by the caller; two threads may build the same one."""

    def __init__(self, size: int, name: str = "") -> None:
        self._size = size
        self.name = name  # lookups of a named cache are counted (dspex_cache_requests_total{cache=name})
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
        if self.name:
            for observer in _lookup_observers:
                observer(self.name, value is not None)
        return value

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def drop_where(self, matches: Callable[[Hashable], bool]) -> None:
        with self._lock:
            for key in [key for key in self._items if matches(key)]:
                del self._items[key]
