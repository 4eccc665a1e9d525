"""Global per-LanguageModel limits (rpm, tpm), shared by every worker process through Redis.

A moving window from the `limits` library. Where the counts live is configured once per process
(`configure_rate_limits`, from the app's ready hook); without Redis the window is per process (the
embedded default runs one worker). Being over the limit raises `RateLimited`, which snoozes the
execution without using an attempt and frees the worker slot at once.
"""

from __future__ import annotations

import threading
import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from cognitive.errors import RateLimited

_storage_url: str | None = None
_limiter_instance: MovingWindowRateLimiter | None = None
_lock = threading.Lock()


def configure_rate_limits(*, storage_url: str | None) -> None:
    """Keep the counts in Redis at `storage_url` (shared by every process), or in this process if None."""
    global _storage_url, _limiter_instance
    with _lock:
        _storage_url = storage_url
        _limiter_instance = None  # built on first use, so configuring never connects to Redis


def reset_rate_limits() -> None:
    """Forget every count (tests)."""
    _limiter().storage.reset()


def _limiter() -> MovingWindowRateLimiter:
    global _limiter_instance
    limiter = _limiter_instance
    if limiter is not None:
        return limiter
    with _lock:
        if _limiter_instance is None:
            storage: Storage = RedisStorage(_storage_url) if _storage_url else MemoryStorage()
            _limiter_instance = MovingWindowRateLimiter(storage)
        return _limiter_instance


def _retry_after(item: RateLimitItemPerMinute, key: str) -> float:
    stats = _limiter().get_window_stats(item, key)
    return max(0.05, stats.reset_time - time.time())


def acquire_call(*, lm_key: str, rpm: int | None, tpm: int | None, estimated_tokens: int = 0) -> None:
    """Take one request (and check the token budget) for this LM, or raise RateLimited."""
    limiter = _limiter()
    if tpm:
        tokens = RateLimitItemPerMinute(tpm)
        if not limiter.test(tokens, f"tpm:{lm_key}", cost=max(1, min(estimated_tokens, tpm))):
            raise RateLimited(
                f"token limit of {tpm}/min for LM '{lm_key}' reached",
                retry_after=_retry_after(tokens, f"tpm:{lm_key}"),
                lm=lm_key,
            )
    if rpm:
        requests = RateLimitItemPerMinute(rpm)
        if not limiter.hit(requests, f"rpm:{lm_key}"):
            raise RateLimited(
                f"request limit of {rpm}/min for LM '{lm_key}' reached",
                retry_after=_retry_after(requests, f"rpm:{lm_key}"),
                lm=lm_key,
            )


def record_tokens(*, lm_key: str, tpm: int | None, tokens: int) -> None:
    """Charge the tokens a call really used against the LM's per-minute budget."""
    if tpm and tokens > 0:
        # A window already over budget records nothing more; the next acquire_call() will refuse anyway.
        _limiter().hit(RateLimitItemPerMinute(tpm), f"tpm:{lm_key}", cost=min(tokens, tpm))
