"""docker-compose.yml: every command of the app's services points at something that exists."""

from __future__ import annotations

import importlib
import re
import sys
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml
from celery import Celery
from celery.app.utils import find_app
from celery.utils.imports import symbol_by_name
from django.conf import settings
from django.core.management import get_commands

REPO = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
APP_SERVICES = {name: s for name, s in SERVICES.items() if "build" in s}


def command(service: str) -> list[str]:
    cmd = SERVICES[service]["command"]
    assert isinstance(cmd, list), f"{service}: use the exec form so arguments are not re-split by a shell"
    return cmd


def option(args: list[str], *names: str) -> str:
    for i, arg in enumerate(args):
        for name in names:
            if arg == name:
                return args[i + 1]
            if arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    raise AssertionError(f"none of {names} in {args}")


def celery_app(args: list[str]) -> Celery:
    app = find_app(option(args, "-A", "--app"))
    assert isinstance(app, Celery)
    return app


def test_the_stack_has_the_documented_services():
    assert {"postgres", "redis", "migrate", "web", "worker", "beat"} <= set(SERVICES)
    assert set(APP_SERVICES) == {"migrate", "web", "worker", "beat", "metrics"}
    assert (REPO / "Dockerfile").is_file()


@pytest.mark.parametrize("service", sorted(APP_SERVICES))
def test_every_app_command_is_installed_in_the_environment(service):
    executable = command(service)[0]

    if executable != "python":
        assert (Path(sys.executable).parent / executable).exists(), f"{executable} is not installed"
        assert re.search(rf"^{executable}\b", (REPO / "requirements.txt").read_text(), re.MULTILINE | re.IGNORECASE)


def test_migrate_is_a_real_management_command():
    args = command("migrate")

    assert args[:2] == ["python", "manage.py"]
    assert (REPO / "manage.py").is_file()
    assert args[2] in get_commands()
    assert args[2] == "migrate"


def test_web_serves_the_wsgi_application():
    args = command("web")
    module_name, attribute = args[1].split(":")

    application = getattr(importlib.import_module(module_name), attribute)

    assert args[0] == "gunicorn"
    assert callable(application)
    assert f"{module_name}.{attribute}" == settings.WSGI_APPLICATION


def test_worker_and_beat_load_the_celery_app():
    for service in ("worker", "beat"):
        args = command(service)
        assert args[0] == "celery"
        app = celery_app(args)
        assert app.main == "dspex_site"
        assert args[args.index(option(args, "-A", "--app")) + 1] == service


def test_beat_scheduler_imports_and_matches_the_settings():
    args = command("beat")
    path = option(args, "--scheduler", "-S")

    scheduler = symbol_by_name(path)

    assert scheduler.__name__ == "DatabaseScheduler"
    assert path == settings.CELERY_BEAT_SCHEDULER


def _routed_queues(app: Celery) -> set[str]:
    routes = app.conf.task_routes or {}
    return {route["queue"] for route in routes.values()} | {app.conf.task_default_queue}


def test_the_worker_consumes_every_queue_tasks_are_routed_to():
    args = command("worker")
    queues = option(args, "-Q", "--queues").split(",")
    app = celery_app(args)

    assert queues and all(isinstance(q, str) and q.strip() == q and q for q in queues)
    assert set(queues) == _routed_queues(app)


def test_every_task_is_routed_to_a_consumed_queue():
    args = command("worker")
    app = celery_app(args)
    app.loader.import_default_modules()
    consumed = set(option(args, "-Q", "--queues").split(","))
    routes = app.conf.task_routes or {}

    ours = [name for name in app.tasks if name.startswith("workers.")]
    assert ours, "no tasks were discovered in workers/"
    for name in ours:
        queues = [route["queue"] for pattern, route in routes.items() if fnmatch(name, pattern)]
        assert queues, f"{name} has no route"
        assert queues[0] in consumed, f"{name} goes to {queues[0]}, which no worker consumes"


def test_beat_schedules_only_real_tasks():
    app = celery_app(command("beat"))
    app.loader.import_default_modules()

    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks


def test_app_environment_names_only_settings_that_exist():
    environment = COMPOSE["x-app"]["environment"]
    settings_source = (REPO / "dspex_site" / "settings.py").read_text()
    key_env = re.search(r":-(\w+)\}", environment["DSPEX_DEFAULT_LM_KEY_ENV"]).group(1)

    for name in environment:
        if name == key_env:  # the LM key itself, named by DSPEX_DEFAULT_LM_KEY_ENV
            continue
        assert f'"{name}"' in settings_source, f"{name} is set in docker-compose.yml but never read"


def test_the_default_allowed_hosts_cover_both_local_names():
    default = re.fullmatch(r"\$\{ALLOWED_HOSTS:-([^}]*)\}", COMPOSE["x-app"]["environment"]["ALLOWED_HOSTS"]).group(1)

    assert {"localhost", "127.0.0.1"} <= set(default.split(","))


def test_the_image_collects_static_files_for_whitenoise():
    steps = [line for line in (REPO / "Dockerfile").read_text().splitlines() if line.startswith("RUN ")]
    collect = [line for line in steps if "collectstatic" in line]

    assert collect and "manage.py collectstatic --noinput" in collect[0]
    assert "collectstatic" in get_commands()
    assert "whitenoise.middleware.WhiteNoiseMiddleware" in settings.MIDDLEWARE
