from django.apps import AppConfig


class CognitiveConfig(AppConfig):
    name = "cognitive"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cognitive.telemetry import observers

        # Metrics and spans for LM calls and cache lookups, in every process (web, workers).
        observers.install()
