from django.apps import AppConfig


class CognitiveConfig(AppConfig):
    name = "cognitive"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cognitive import heartbeats  # noqa: F401 (connects the Celery workers' heartbeat signals)
