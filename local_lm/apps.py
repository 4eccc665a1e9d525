from django.apps import AppConfig


class LocalLmConfig(AppConfig):
    name = "local_lm"
    verbose_name = "Local OpenAI-compatible LM server"
