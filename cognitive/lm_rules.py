"""What an LM row may point at: which environment variable holds its key, which hosts it may call.

A worker sends the value of `api_key_env` to `api_base`, so a row naming `SECRET_KEY` would hand
that secret to whatever host the row names. Key variables must match an operator-set pattern and
are never a variable the settings read; hosts may be restricted to an allow-list.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from dspex_site.env import READ_NAMES


def forbidden_key_env_names() -> set[str]:
    """Every variable the settings read from the environment, and every Django setting's own name."""
    return set(READ_NAMES) | {name for name in dir(settings) if name.isupper()}


def key_env_problem(name: str) -> str | None:
    if not name:
        return None
    if name in forbidden_key_env_names():
        return f"'{name}' is one of this server's own settings; an LM key needs a variable of its own"
    if not re.fullmatch(settings.DSPEX_LM_KEY_ENV_PATTERN, name):
        return f"'{name}' does not match the allowed key variable names (DSPEX_LM_KEY_ENV_PATTERN)"
    return None


def api_base_problem(url: str) -> str | None:
    allowed = [host.lower() for host in settings.DSPEX_LM_ALLOWED_HOSTS]
    if not url or not allowed:
        return None
    host = (urlsplit(url).hostname or "").lower()
    if host not in allowed:
        return f"host '{host}' is not one of the allowed LM hosts (DSPEX_LM_ALLOWED_HOSTS)"
    return None


def validate_key_env_name(value: str) -> None:
    problem = key_env_problem(value)
    if problem:
        raise ValidationError(problem)


def validate_api_base_host(value: str) -> None:
    problem = api_base_problem(value)
    if problem:
        raise ValidationError(problem)
