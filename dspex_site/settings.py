"""DSPex settings. Everything that differs between machines comes from the environment (see README)."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from dspex_site.env import env_bool, env_float, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("DSPEX_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set unless DEBUG=1 (a development key is used only then)")
    SECRET_KEY = "dspex-development-only-key-not-for-production"  # noqa: S105 (DEBUG only)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "django_fsm",
    "django_celery_beat",
    "cognitive",
    "local_lm",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "dspex_site.urls"
WSGI_APPLICATION = "dspex_site.wsgi.application"
ASGI_APPLICATION = "dspex_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_DEFAULT_DATABASE_URL = f"sqlite:///{VAR_DIR / 'dspex.sqlite3'}"
DATABASE_URL = env_url("DATABASE_URL", _DEFAULT_DATABASE_URL, schemes=("sqlite", "postgres", "postgresql"))
# Persistent connections: a worker thread runs many short jobs, and opening a PostgreSQL
# connection per job cost more CPU than the job's own queries. Checked before reuse.
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 300, minimum=0), conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Workers and the web process share the file; wait for the lock instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    # A file, not Django's shared-cache in-memory default: with threads (parallel pipeline groups)
    # shared cache answers "table is locked" at once instead of waiting for the lock like a file does.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_url("REDIS_URL", None, schemes=("redis", "rediss"))
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "dspex",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "dspex"}}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "cognitive.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "cognitive.api.exceptions.exception_handler",
    # Per user and action, on the shared cache (Redis in production), as in the original design.
    "DEFAULT_THROTTLE_RATES": {
        scope: env_str("DSPEX_THROTTLE_RATE", "100/min") for scope in ("run", "run-batch", "optimize")
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "DSPex API",
    "DESCRIPTION": "Declare DSPy programs as data, run them as durable jobs, trace and optimize them.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ModuleStateEnum": "cognitive.models.module.ModuleState.choices",
        "ProgramStatusEnum": "cognitive.models.program.ProgramStatus.choices",
        "ExecutionStatusEnum": "cognitive.models.execution.ExecutionStatus.choices",
    },
}

# Celery. Without Redis the broker is a folder on disk, so a worker still runs on a bare machine.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        "control_folder": str(_broker_dir / "control"),
    }
# Per-task policy (acks_late, time limits, names) is declared once, in workers/policy.py.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes every database connection before and after every task,
# whatever CONN_MAX_AGE says (celery#9824 was reverted), so each task paid for a new PostgreSQL
# connection. This turns that off; dspex_site/celery.py instead recycles connections around each
# task the way Django does around a request (CONN_MAX_AGE, health checks, broken connections).
CELERY_DB_REUSE_MAX = 10**9
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# Workers log through LOGGING below (job fields, LOG_FORMAT=json) instead of Celery's own setup.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_ROUTES = {
    "workers.executions.*": {"queue": "executions"},
    "workers.optimization.*": {"queue": "optimization"},
    "workers.maintenance.*": {"queue": "default"},
}
# A large batch is published with up to this many ids per message (see jobs.ids_per_message).
DSPEX_IDS_PER_MESSAGE_MAX = env_int("DSPEX_IDS_PER_MESSAGE_MAX", 16, minimum=1)
# One run's time limits; a message carrying several runs gets them times their number.
DSPEX_EXECUTION_SOFT_TIME_LIMIT = env_int("DSPEX_EXECUTION_SOFT_TIME_LIMIT", 600, minimum=1)
DSPEX_EXECUTION_TIME_LIMIT = env_int("DSPEX_EXECUTION_TIME_LIMIT", 660, minimum=1)
CELERY_TASK_QUEUE_MAX_PRIORITY = 9
CELERY_TASK_DEFAULT_PRIORITY = 5
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Above the longest task time limit, so a slow task is never delivered twice by Redis itself.
        # A message carrying several execution ids gets the per-run limit times their number.
        "visibility_timeout": max(
            DSPEX_EXECUTION_TIME_LIMIT * DSPEX_IDS_PER_MESSAGE_MAX,
            env_int("DSPEX_OPTIMIZATION_TIME_LIMIT", 3660),
        ) * 2,
        "queue_order_strategy": "priority",
        "priority_steps": list(range(10)),
        "sep": ":",
    }
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "sweep-executions": {"task": "workers.maintenance.sweep", "schedule": env_int("DSPEX_SWEEP_EVERY_SECONDS", 5)},
    "reap-executions": {"task": "workers.maintenance.reap", "schedule": env_int("DSPEX_REAP_EVERY_SECONDS", 5)},
    "sweep-optimizations": {
        "task": "workers.maintenance.sweep_optimizations", "schedule": env_int("DSPEX_SWEEP_EVERY_SECONDS", 5)
    },
    "reap-optimizations": {
        "task": "workers.maintenance.reap_optimizations", "schedule": env_int("DSPEX_REAP_EVERY_SECONDS", 5)
    },
}

# The job core (see docs/architecture.md).
DSPEX_EXECUTION_LEASE_SECONDS = env_int("DSPEX_EXECUTION_LEASE_SECONDS", 60, minimum=1)
DSPEX_MAX_ATTEMPTS = env_int("DSPEX_MAX_ATTEMPTS", 3, minimum=1)
DSPEX_RETRY_BASE_SECONDS = env_int("DSPEX_RETRY_BASE_SECONDS", 2, minimum=0)
DSPEX_RETRY_MAX_SECONDS = env_int("DSPEX_RETRY_MAX_SECONDS", 300, minimum=1)
DSPEX_SWEEP_REPUBLISH_AFTER_SECONDS = env_int("DSPEX_SWEEP_REPUBLISH_AFTER_SECONDS", 30, minimum=1)
DSPEX_BATCH_MAX = env_int("DSPEX_BATCH_MAX", 1000, minimum=1)
# How often a running execution asks the database whether it was cancelled (at most; asked before LM calls).
DSPEX_CANCEL_CHECK_SECONDS = env_float("DSPEX_CANCEL_CHECK_SECONDS", 0.5, minimum=0.0)
# A synchronous run (`wait: true`, module execute) past this is handed to a worker and answered 202.
# Keep it below the web server's timeout (gunicorn's default is 30 s).
DSPEX_SYNC_RUN_DEADLINE_SECONDS = env_float("DSPEX_SYNC_RUN_DEADLINE_SECONDS", 20.0, minimum=0.0)

# Optimization runs (see cognitive/services/optimization_jobs.py).
DSPEX_OPTIMIZATION_LEASE_SECONDS = env_int("DSPEX_OPTIMIZATION_LEASE_SECONDS", 60, minimum=1)
DSPEX_OPTIMIZATION_MAX_ATTEMPTS = env_int("DSPEX_OPTIMIZATION_MAX_ATTEMPTS", 3, minimum=1)
DSPEX_OPTIMIZATION_THREADS = env_int("DSPEX_OPTIMIZATION_THREADS", 4, minimum=1)
# How often a running optimization writes its progress (with its lease renewal).
DSPEX_OPTIMIZATION_PROGRESS_SECONDS = env_float("DSPEX_OPTIMIZATION_PROGRESS_SECONDS", 1.0, minimum=0.05)
DSPEX_OPTIMIZATION_SOFT_TIME_LIMIT = env_int("DSPEX_OPTIMIZATION_SOFT_TIME_LIMIT", 3600, minimum=1)
DSPEX_OPTIMIZATION_TIME_LIMIT = env_int("DSPEX_OPTIMIZATION_TIME_LIMIT", 3660, minimum=1)  # also sizes visibility
# A new version is promoted only when it beats the active one on val by more than this.
DSPEX_PROMOTION_MARGIN = env_float("DSPEX_PROMOTION_MARGIN", 0.0)

DSPEX_DEFAULT_LM = env_str("DSPEX_DEFAULT_LM", "openai/local")
DSPEX_DEFAULT_LM_API_BASE = env_str("DSPEX_DEFAULT_LM_API_BASE", "http://127.0.0.1:8765/v1")
DSPEX_DEFAULT_LM_KEY_ENV = env_str("DSPEX_DEFAULT_LM_KEY_ENV", "")
DSPEX_DEFAULT_LM_NAME = env_str("DSPEX_DEFAULT_LM_NAME", "default")

# Observability (docs/observability.md).
# Every process (web, workers, beat) writes its metric values under this folder and /metrics sums
# them; empty it when the whole system restarts (docker-compose mounts a fresh volume).
PROMETHEUS_MULTIPROC_DIR = Path(env_str("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "metrics")))
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(PROMETHEUS_MULTIPROC_DIR)
# /metrics on the web server (staff tokens only); off when Prometheus scrapes `manage.py metrics_server`.
DSPEX_METRICS_URL = env_bool("DSPEX_METRICS_URL", True)
# How many distinct program / module names get their own label value per process (then "other"; 0: none).
DSPEX_METRICS_NAMED_PROGRAMS = env_int("DSPEX_METRICS_NAMED_PROGRAMS", 50, minimum=0)
DSPEX_METRICS_NAMED_MODULES = env_int("DSPEX_METRICS_NAMED_MODULES", 50, minimum=0)
# Stats endpoints: the longest window `?since=` may ask for.
DSPEX_STATS_MAX_DAYS = env_int("DSPEX_STATS_MAX_DAYS", 400, minimum=1)
# Workers write a heartbeat this often; the dashboard counts a worker alive for three of them.
DSPEX_WORKER_HEARTBEAT_SECONDS = env_int("DSPEX_WORKER_HEARTBEAT_SECONDS", 10, minimum=1)

# Spans go out over OTLP/HTTP only when this is set (the standard OTEL_* variables configure the rest).
OTEL_EXPORTER_OTLP_ENDPOINT = env_str("OTEL_EXPORTER_OTLP_ENDPOINT", "")

LOG_FORMAT = env_str("LOG_FORMAT", "text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'text' or 'json', not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"job": {"()": "cognitive.telemetry.logs.JobContextFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s%(job)s: %(message)s"},
        "json": {
            "()": "cognitive.telemetry.logs.JobJsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["job"], "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"LiteLLM": {"level": "WARNING"}, "httpx": {"level": "WARNING"}, "dspy": {"level": "WARNING"}},
}

SENTRY_DSN = env_str("SENTRY_DSN", "")
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=env_str("SENTRY_ENVIRONMENT", "production"),
        integrations=[DjangoIntegration(), CeleryIntegration()],
        traces_sample_rate=env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0, minimum=0.0),
        send_default_pii=False,
    )
