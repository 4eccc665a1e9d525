"""DSPex settings. Everything that differs between machines comes from the environment (see README)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

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
    "drf_spectacular_sidecar",  # Swagger UI's files, served by us: nothing served loads from a CDN
    "django_fsm",
    "django_celery_beat",
    "strawberry_django",
    "cognitive",
    "local_lm",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outermost after security: every /api/ answer, even Django's own 404/413/500, gets the JSON envelope.
    "cognitive.api.middleware.ApiEnvelopeMiddleware",
    # Static files (the admin's CSS, Swagger UI) from the same process, also under gunicorn with DEBUG=0.
    "whitenoise.middleware.WhiteNoiseMiddleware",
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
# `manage.py collectstatic` fills it (the Docker image does at build time); WhiteNoise serves it.
STATIC_ROOT = Path(env_str("DSPEX_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
if DEBUG:
    # Under DEBUG files come from the apps directly; an empty root only spares WhiteNoise's warning about it.
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed copies beside each file; no manifest, so templates render before collectstatic has run.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "cognitive.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    # Every JSON body is checked once for NUL characters and nesting depth (cognitive/api/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "cognitive.api.parsers.CheckedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Client addresses for throttling: X-Forwarded-For is trusted only through this many proxies
    # (0: the socket's address), so a client cannot pick its own address to dodge the login throttle.
    "NUM_PROXIES": env_int("DSPEX_TRUSTED_PROXIES", 0, minimum=0),
    "DEFAULT_FILTER_BACKENDS": [
        "cognitive.api.filters.FilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "cognitive.api.exceptions.exception_handler",
    # Per user and action, on the shared cache (Redis in production), as in the original design.
    "DEFAULT_THROTTLE_RATES": {
        **{scope: env_str("DSPEX_THROTTLE_RATE", "100/min") for scope in ("run", "run-batch", "optimize")},
        "login-username": env_str("DSPEX_LOGIN_RATE_PER_USERNAME", "10/min"),
        "login-address": env_str("DSPEX_LOGIN_RATE_PER_ADDRESS", "30/min"),
    },
}

# Request bounds (see README "Bounds"). Django answers a larger body with 413 (cognitive/api/middleware.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440, minimum=1024)
DSPEX_JSON_MAX_DEPTH = env_int("DSPEX_JSON_MAX_DEPTH", 64, minimum=4)
DSPEX_PAGE_SIZE_MAX = env_int("DSPEX_PAGE_SIZE_MAX", 200, minimum=1)

SPECTACULAR_SETTINGS = {
    "TITLE": "DSPex API",
    "DESCRIPTION": "Declare DSPy programs as data, run them as durable jobs, trace and optimize them.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Swagger UI otherwise shows a badge fetched from the public online validator.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "ENUM_NAME_OVERRIDES": {
        "ModuleStateEnum": "cognitive.models.module.ModuleState.choices",
        "ProgramStatusEnum": "cognitive.models.program.ProgramStatus.choices",
        "ExecutionStatusEnum": "cognitive.models.execution.ExecutionStatus.choices",
        "OptimizationRunStatusEnum": "cognitive.models.optimization_run.OptimizationRunStatus.choices",
        "ProgramVersionSourceEnum": "cognitive.models.program.VersionSource.choices",
        "ExampleSourceEnum": "cognitive.models.dataset.ExampleSource.choices",
    },
}

# Celery. Without Redis the broker is a folder on disk, so a worker still runs on a bare machine.
# The folder broker ignores the host; naming one spares kombu's "No hostname was supplied" warning.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://localhost//")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
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
# Declared, so a worker started without -Q consumes every queue a task is routed to (Celery's
# default is the default queue alone, and queued runs would wait forever). Each is declared as
# Celery declares a missing queue (a direct exchange and routing key of its own name), so
# messages route the same whether or not a worker names its queues with -Q.
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name, type="direct"), routing_key=name)
    for name in sorted({route["queue"] for route in CELERY_TASK_ROUTES.values()} | {CELERY_TASK_DEFAULT_QUEUE})
]
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
# django-celery-beat's, recovering its entries after a database outage at start-up.
CELERY_BEAT_SCHEDULER = "workers.scheduler:DatabaseScheduler"
DSPEX_SWEEP_EVERY_SECONDS = env_int("DSPEX_SWEEP_EVERY_SECONDS", 5, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "sweep-executions": {"task": "workers.maintenance.sweep", "schedule": DSPEX_SWEEP_EVERY_SECONDS},
    "reap-executions": {"task": "workers.maintenance.reap", "schedule": env_int("DSPEX_REAP_EVERY_SECONDS", 5)},
    "sweep-optimizations": {
        "task": "workers.maintenance.sweep_optimizations", "schedule": DSPEX_SWEEP_EVERY_SECONDS
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

# Health (see cognitive/services/health.py): /readyz wants a worker heartbeat and a sweep this recent.
DSPEX_WORKER_HEARTBEAT_SECONDS = env_int("DSPEX_WORKER_HEARTBEAT_SECONDS", 10, minimum=1)
DSPEX_READY_WORKER_SECONDS = env_int("DSPEX_READY_WORKER_SECONDS", 6 * DSPEX_WORKER_HEARTBEAT_SECONDS, minimum=1)
DSPEX_READY_SWEEPER_SECONDS = env_int("DSPEX_READY_SWEEPER_SECONDS", max(60, 3 * DSPEX_SWEEP_EVERY_SECONDS), minimum=1)

# Module call options that multiply an execution's cost (cognitive/engine/modules.py). An LM's own
# `max_output_tokens` lowers the max_tokens bound further for modules and calls that use it.
DSPEX_MODULE_MAX_N = env_int("DSPEX_MODULE_MAX_N", 5, minimum=1)
DSPEX_MODULE_MAX_TOKENS = env_int("DSPEX_MODULE_MAX_TOKENS", 16_384, minimum=1)
DSPEX_REACT_MAX_ITERS = env_int("DSPEX_REACT_MAX_ITERS", 20, minimum=1)
DSPEX_MULTI_CHAIN_MAX = env_int("DSPEX_MULTI_CHAIN_MAX", 8, minimum=2)

# Optimizer knobs (cognitive/engine/optimizer_bounds.py), grouped by what they multiply.
DSPEX_OPTIMIZER_MAX_DEMOS = env_int("DSPEX_OPTIMIZER_MAX_DEMOS", 16, minimum=1)
DSPEX_OPTIMIZER_MAX_ROUNDS = env_int("DSPEX_OPTIMIZER_MAX_ROUNDS", 10, minimum=1)
DSPEX_OPTIMIZER_MAX_CANDIDATES = env_int("DSPEX_OPTIMIZER_MAX_CANDIDATES", 50, minimum=1)
DSPEX_OPTIMIZER_MAX_BATCH = env_int("DSPEX_OPTIMIZER_MAX_BATCH", 200, minimum=1)
DSPEX_OPTIMIZER_MAX_METRIC_CALLS = env_int("DSPEX_OPTIMIZER_MAX_METRIC_CALLS", 5000, minimum=1)

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
# Every run has a budget (cognitive/services/optimization_budget.py): a request may lower the
# default and raise it up to the ceiling the operator sets here, never beyond.
DSPEX_OPTIMIZATION_DEFAULT_MAX_LM_CALLS = env_int("DSPEX_OPTIMIZATION_DEFAULT_MAX_LM_CALLS", 500, minimum=1)
DSPEX_OPTIMIZATION_CEILING_MAX_LM_CALLS = env_int("DSPEX_OPTIMIZATION_CEILING_MAX_LM_CALLS", 5000, minimum=1)
DSPEX_OPTIMIZATION_DEFAULT_MAX_COST = env_float("DSPEX_OPTIMIZATION_DEFAULT_MAX_COST", 1.0, minimum=0.0)
DSPEX_OPTIMIZATION_CEILING_MAX_COST = env_float("DSPEX_OPTIMIZATION_CEILING_MAX_COST", 10.0, minimum=0.0)
for _what in ("MAX_LM_CALLS", "MAX_COST"):
    if globals()[f"DSPEX_OPTIMIZATION_DEFAULT_{_what}"] > globals()[f"DSPEX_OPTIMIZATION_CEILING_{_what}"]:
        raise ImproperlyConfigured(
            f"DSPEX_OPTIMIZATION_DEFAULT_{_what} must not exceed DSPEX_OPTIMIZATION_CEILING_{_what}"
        )

DSPEX_DEFAULT_LM = env_str("DSPEX_DEFAULT_LM", "openai/local")
DSPEX_DEFAULT_LM_API_BASE = env_str("DSPEX_DEFAULT_LM_API_BASE", "http://127.0.0.1:8765/v1")
DSPEX_DEFAULT_LM_KEY_ENV = env_str("DSPEX_DEFAULT_LM_KEY_ENV", "")
DSPEX_DEFAULT_LM_NAME = env_str("DSPEX_DEFAULT_LM_NAME", "default")
# An LM row's key variable must match this (an operator could name any secret otherwise) and is
# never one of the variables the settings read (cognitive/services/lm_policy.py).
DSPEX_LM_KEY_ENV_PATTERN = env_str("DSPEX_LM_KEY_ENV_PATTERN", r"^(?:[A-Z0-9_]+_API_KEY|DSPEX_LM_KEY_[A-Z0-9_]+)$")
try:
    re.compile(DSPEX_LM_KEY_ENV_PATTERN)
except re.error as exc:
    raise ImproperlyConfigured(f"DSPEX_LM_KEY_ENV_PATTERN is not a regular expression: {exc}") from None
# Optional: the only hosts an LM row's api_base may name (empty: any).
DSPEX_LM_ALLOWED_HOSTS = env_list("DSPEX_LM_ALLOWED_HOSTS", [])

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

# GraphQL (/graphql/): bounds on what one document may ask for (see docs/graphql.md).
DSPEX_GRAPHQL_PAGE_DEFAULT = env_int("DSPEX_GRAPHQL_PAGE_DEFAULT", 20, minimum=1)
DSPEX_GRAPHQL_PAGE_MAX = env_int("DSPEX_GRAPHQL_PAGE_MAX", 100, minimum=1)
DSPEX_GRAPHQL_MAX_DEPTH = env_int("DSPEX_GRAPHQL_MAX_DEPTH", 10, minimum=2)
DSPEX_GRAPHQL_MAX_ALIASES = env_int("DSPEX_GRAPHQL_MAX_ALIASES", 15, minimum=1)
DSPEX_GRAPHQL_MAX_TOKENS = env_int("DSPEX_GRAPHQL_MAX_TOKENS", 2000, minimum=100)
# A module's performanceMetrics cover its last this-many finished executions (a bounded read).
DSPEX_METRICS_WINDOW = env_int("DSPEX_METRICS_WINDOW", 1000, minimum=1)
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
