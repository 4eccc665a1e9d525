"""Operator-set bounds the engine enforces (DSPy's `n`, `max_tokens`, optimizer knobs), by setting name.

The engine reads no settings: the app installs a provider once per process (cognitive/apps.py)
that reads each bound when it is asked for, so a changed setting applies at once.
"""

from __future__ import annotations

from collections.abc import Callable


def _not_installed(name: str) -> int:
    raise LookupError(f"no provider for the engine's limit {name}; install one with install_limit_provider()")


_provider: Callable[[str], int] = _not_installed


def install_limit_provider(provider: Callable[[str], int]) -> None:
    global _provider
    _provider = provider


def limit(name: str) -> int:
    return _provider(name)
