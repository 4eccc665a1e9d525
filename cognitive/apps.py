from django.apps import AppConfig


class CognitiveConfig(AppConfig):
    name = "cognitive"
    default_auto_field = "django.db.models.BigAutoField"
