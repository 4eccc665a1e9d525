from django.apps import AppConfig


class CognitiveConfig(AppConfig):
    name = "cognitive"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from cognitive.engine import dspy_logs_follow_logging
        from cognitive.engine.limits import install_limit_provider
        from cognitive.services.lms import lm_rate_limits_configure

        # The engine reads no settings: it is told, once per process, where shared state lives
        # and how loud DSPy may be.
        lm_rate_limits_configure()
        install_limit_provider(lambda name: getattr(settings, name))
        dspy_logs_follow_logging(settings.LOGGING.get("loggers", {}).get("dspy", {}).get("level", "WARNING"))

        from cognitive import heartbeats  # noqa: F401 (connects the Celery workers' heartbeat signals)
        from cognitive.telemetry import observers

        # Metrics and spans for LM calls and cache lookups, in every process (web, workers).
        observers.install()
