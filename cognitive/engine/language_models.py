"""One `dspy.LM` per LanguageModel configuration, built once and shared by every run in the process.

`dspy.LM` keeps connection pools per instance, so building one per request would throw them
away; the cache key includes `updated_at`, so an edited LM row takes effect on the next run.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from typing import Any, Protocol

import dspy

from cognitive.engine.rate_limits import acquire_call, record_tokens

# DSPy otherwise fetches LiteLLM's price map from GitHub (5 s timeout) on the first priced call
# of every process; the bundled snapshot is enough for cost estimates and keeps workers offline.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

_MAX_CACHED = 64


class LanguageModelConfig(Protocol):
    """What the engine reads from a `cognitive.models.LanguageModel` row."""

    name: str
    model: str
    api_base: str
    api_key_env: str
    params: dict[str, Any]
    rpm: int | None
    tpm: int | None
    updated_at: Any


class TracedLM(dspy.LM):
    """A `dspy.LM` whose history goes to the running step's trace instead of piling up in memory.

    DSPy hands each finished call (usage, cost, messages) to `update_history`; the base class
    would append it to process-wide lists that grow without bound in a worker. Here it is
    passed to whichever `cognitive.engine.tracing.StepTrace` is active and then dropped.
    """

    # (limiter key, requests per minute, tokens per minute), shared by every worker through Redis.
    limits: tuple[str, int | None, int | None] = ("", None, None)

    def __call__(self, prompt: Any = None, *, messages: Any = None, **kwargs: Any) -> Any:
        from cognitive.engine.tracing import raise_if_stopped, recording_lm_call

        raise_if_stopped()
        self._acquire(prompt, messages)
        try:
            with recording_lm_call(self, prompt, messages) as call:
                call.outputs = super().__call__(prompt, messages=messages, **kwargs)
        except Exception as exc:
            self._name_endpoint(exc)
            raise
        return call.outputs

    async def acall(self, prompt: Any = None, *, messages: Any = None, **kwargs: Any) -> Any:
        from cognitive.engine.tracing import raise_if_stopped, recording_lm_call

        raise_if_stopped()
        self._acquire(prompt, messages)
        try:
            with recording_lm_call(self, prompt, messages) as call:
                call.outputs = await super().acall(prompt, messages=messages, **kwargs)
        except Exception as exc:
            self._name_endpoint(exc)
            raise
        return call.outputs

    def _name_endpoint(self, exc: Exception) -> None:
        """Say which LM and URL failed: provider errors name a host at best ("Connection error." at worst)."""
        note = f"LM '{self.limits[0] or self.model}' at {self.kwargs.get('api_base') or 'the provider default URL'}"
        if note not in getattr(exc, "__notes__", ()):
            exc.add_note(note)

    def _acquire(self, prompt: Any, messages: Any) -> None:
        key, rpm, tpm = self.limits
        if rpm or tpm:
            acquire_call(lm_key=key, rpm=rpm, tpm=tpm, estimated_tokens=_estimate_tokens(prompt, messages))

    def update_history(self, entry: dict[str, Any]) -> None:
        from cognitive.engine.tracing import record_lm_entry

        key, _, tpm = self.limits
        if tpm:
            usage = entry.get("usage") or {}
            record_tokens(lm_key=key, tpm=tpm, tokens=int(usage.get("total_tokens") or 0))

        record_lm_entry(entry)


def _estimate_tokens(prompt: Any, messages: Any) -> int:
    """Roughly four characters a token: enough to keep a tpm budget from being overrun by a burst."""
    text = prompt or ""
    for message in messages or []:
        content = message.get("content") if isinstance(message, dict) else None
        text += content if isinstance(content, str) else json.dumps(content, default=str)
    return len(text) // 4


_cache: OrderedDict[tuple[Any, ...], TracedLM] = OrderedDict()
_lock = threading.Lock()


def lm_identity(config: LanguageModelConfig) -> tuple[Any, ...]:
    """What makes two LM configurations the same client (and a cached module built on one still valid)."""
    # Keyed by what the LM is rather than by row id: the settings' default LM is an unsaved row
    # with a fresh id each time, and two rows with the same configuration may share one client.
    params = json.dumps(config.params or {}, sort_keys=True, default=str)
    limits = (config.name, config.rpm, config.tpm)
    return (str(config.updated_at), config.model, config.api_base, config.api_key_env, params, limits)


def build_lm(config: LanguageModelConfig) -> TracedLM:
    params = dict(config.params or {})
    # The job layer retries whole runs and steps retry on their own; LiteLLM/lm15 retries
    # would multiply those and hide failures from the trace.
    params["num_retries"] = int(params.get("num_retries", 0))
    api_key = (os.environ.get(config.api_key_env) if config.api_key_env else None) or "local"
    kwargs: dict[str, Any] = {"api_key": api_key, "cache": False, **params}
    if config.api_base:
        kwargs["api_base"] = config.api_base
    lm = TracedLM(config.model, **kwargs)
    lm.limits = (config.name, config.rpm, config.tpm)
    return lm


def lm_for(config: LanguageModelConfig) -> TracedLM:
    """The shared `dspy.LM` for this configuration (thread-safe)."""
    key = lm_identity(config)
    with _lock:
        lm = _cache.get(key)
        if lm is not None:
            _cache.move_to_end(key)
            return lm
    lm = build_lm(config)
    with _lock:
        existing = _cache.setdefault(key, lm)
        _cache.move_to_end(key)
        while len(_cache) > _MAX_CACHED:
            _cache.popitem(last=False)
    return existing


def clear_lm_cache() -> None:
    with _lock:
        _cache.clear()
