"""Settings come from the environment and fail loudly on bad values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from dspex_site.env import env_bool, env_int, env_list, env_str, env_url

REPO = Path(__file__).resolve().parents[2]

# --------------------------------------------------------------------------- the helpers


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("TRUE", True), (" yes ", True), ("off", False), ("0", False)]
)
def test_env_bool_reads_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("DSPEX_X", raw)

    assert env_bool("DSPEX_X", not expected) is expected


def test_env_bool_default_when_unset(monkeypatch):
    monkeypatch.delenv("DSPEX_X", raising=False)

    assert env_bool("DSPEX_X", True) is True


@pytest.mark.parametrize("raw", ["maybe", "2", "yes please"])
def test_env_bool_refuses_anything_else(monkeypatch, raw):
    monkeypatch.setenv("DSPEX_X", raw)

    with pytest.raises(ImproperlyConfigured, match=f"DSPEX_X must be a boolean.*{raw!r}"):
        env_bool("DSPEX_X", False)


def test_env_int(monkeypatch):
    monkeypatch.setenv("DSPEX_X", "42")
    assert env_int("DSPEX_X", 1) == 42
    monkeypatch.setenv("DSPEX_X", "")
    assert env_int("DSPEX_X", 7) == 7


@pytest.mark.parametrize(
    ("raw", "words"), [("abc", "must be an integer"), ("1.5", "must be an integer"), ("-1", "must be >= 0")]
)
def test_env_int_refuses_bad_values(monkeypatch, raw, words):
    monkeypatch.setenv("DSPEX_X", raw)

    with pytest.raises(ImproperlyConfigured, match=f"DSPEX_X {words}"):
        env_int("DSPEX_X", 1, minimum=0)


def test_env_url_accepts_its_schemes(monkeypatch):
    monkeypatch.setenv("DSPEX_X", "redis://localhost:6379/1")
    assert env_url("DSPEX_X", None, schemes=("redis", "rediss")) == "redis://localhost:6379/1"
    monkeypatch.delenv("DSPEX_X")
    assert env_url("DSPEX_X", None, schemes=("redis",)) is None


@pytest.mark.parametrize("raw", ["http://localhost:6379", "localhost:6379", "redis:/localhost"])
def test_env_url_refuses_a_wrong_scheme(monkeypatch, raw):
    monkeypatch.setenv("DSPEX_X", raw)

    with pytest.raises(ImproperlyConfigured, match="DSPEX_X must be a URL with scheme redis"):
        env_url("DSPEX_X", None, schemes=("redis",))


def test_env_str_and_list(monkeypatch):
    monkeypatch.setenv("DSPEX_X", "")
    assert env_str("DSPEX_X", "fallback") == "fallback"
    monkeypatch.setenv("DSPEX_X", " a.example, ,b.example ")
    assert env_list("DSPEX_X", []) == ["a.example", "b.example"]


# --------------------------------------------------------------------------- loading settings in a clean process


def load_settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh interpreter with only `env` (and PATH) set."""
    script = (
        "import json; from django.conf import settings as s; "
        "print(json.dumps({'db': s.DATABASES['default'], 'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS, "
        "'broker': s.CELERY_BROKER_URL, 'cache': s.CACHES['default']['BACKEND'], 'lm': s.DSPEX_DEFAULT_LM}, "
        "default=str))"
    )
    clean = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "dspex_site.settings", "HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def loaded(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_settings_refuse_to_load_without_secret_key_when_debug_is_off(tmp_path):
    result = load_settings(tmp_path, DSPEX_VAR_DIR=str(tmp_path))

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "DSPex is not configured: SECRET_KEY must be set unless DEBUG=1 (a development key is used only then) "
        "(see the Configuration table in README.md)"
    ]


def test_debug_uses_a_development_key_and_local_hosts(tmp_path):
    values = loaded(load_settings(tmp_path, DEBUG="1", DSPEX_VAR_DIR=str(tmp_path)))

    assert values["debug"] is True
    assert "localhost" in values["hosts"]


def test_production_settings_have_no_default_hosts(tmp_path):
    values = loaded(load_settings(tmp_path, SECRET_KEY="k", DSPEX_VAR_DIR=str(tmp_path)))

    assert (values["debug"], values["hosts"]) == (False, [])


def test_defaults_need_neither_a_database_server_nor_redis(tmp_path):
    values = loaded(load_settings(tmp_path, DEBUG="1"))

    assert values["db"]["ENGINE"] == "django.db.backends.sqlite3"
    assert Path(values["db"]["NAME"]) == REPO / "var" / "dspex.sqlite3"
    assert values["broker"] == "filesystem://localhost//"
    assert values["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert values["lm"] == "openai/local"


def test_urls_from_the_environment_choose_postgres_and_redis(tmp_path):
    values = loaded(
        load_settings(
            tmp_path,
            DEBUG="1",
            DSPEX_VAR_DIR=str(tmp_path),
            DATABASE_URL="postgres://u:p@db.example:5432/dspex",
            REDIS_URL="redis://cache.example:6379/0",
            DSPEX_DEFAULT_LM="openai/gpt-4o-mini",
        )
    )

    assert values["db"]["ENGINE"] == "django.db.backends.postgresql"
    assert (values["db"]["HOST"], values["db"]["NAME"]) == ("db.example", "dspex")
    assert values["broker"] == "redis://cache.example:6379/0"
    assert values["cache"] == "django_redis.cache.RedisCache"
    assert values["lm"] == "openai/gpt-4o-mini"


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"DEBUG": "maybe"}, "DEBUG must be a boolean"),
        ({"DATABASE_URL": "mysql://db/dspex"}, "DATABASE_URL must be a URL with scheme"),
        ({"REDIS_URL": "http://cache:6379"}, "REDIS_URL must be a URL with scheme"),
        ({"DB_CONN_MAX_AGE": "forever"}, "DB_CONN_MAX_AGE must be an integer"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(tmp_path, env, words):
    result = load_settings(tmp_path, SECRET_KEY="k", DSPEX_VAR_DIR=str(tmp_path), **env)

    assert result.returncode != 0
    assert words in result.stderr


# --------------------------------------------------------------------------- this test run


def test_this_run_uses_the_database_the_environment_names():
    url = os.environ.get("DATABASE_URL", "")

    assert connection.vendor == ("postgresql" if url.startswith("postgres") else "sqlite")


def test_this_run_uses_redis_when_the_environment_names_it():
    expected = "django_redis.cache.RedisCache" if os.environ.get("REDIS_URL") else "LocMemCache"
    assert expected in settings.CACHES["default"]["BACKEND"]

    cache.set("dspex-settings-test", {"ok": 1}, 5)
    assert cache.get("dspex-settings-test") == {"ok": 1}
    cache.delete("dspex-settings-test")
