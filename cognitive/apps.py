from django.apps import AppConfig


class CognitiveConfig(AppConfig):
    name = "cognitive"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cognitive.services.lms import lm_rate_limits_configure

        # The engine reads no settings: the services tell it, once per process, where shared state lives.
        lm_rate_limits_configure()
