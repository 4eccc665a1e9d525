"""Throttles on the shared cache (Redis in production). A 429 carries Retry-After.

The cache is a guard, not the record: when it cannot be reached the request goes through with a
logged warning (fail open). A run is a database row the sweeper publishes once the broker is back,
so refusing it because the counter is unreachable would turn an outage of the cache into one of the API.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle

logger = logging.getLogger(__name__)


class FailOpenMixin:
    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)  # type: ignore[misc]
        except Exception:  # the cache backend's own errors differ (redis, django-redis, memcached)
            logger.warning(
                "throttle %s skipped: the cache cannot be reached", type(self).__name__, exc_info=True
            )
            return True


class ActionThrottle(FailOpenMixin, ScopedRateThrottle):
    """Per user and action (`run`, `run-batch`, `optimize`)."""


class LoginUsernameThrottle(FailOpenMixin, SimpleRateThrottle):
    """Sign-in attempts per username, from anywhere: guessing one account's password."""

    scope = "login-username"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        username = request.data.get("username") if hasattr(request.data, "get") else None
        if not isinstance(username, str) or not username:
            return None
        # Hashed: a username is any text, a cache key is not.
        ident = hashlib.sha256(username.strip().lower().encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}


class LoginAddressThrottle(FailOpenMixin, SimpleRateThrottle):
    """Sign-in attempts per client address: one client trying many accounts."""

    scope = "login-address"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
