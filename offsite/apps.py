from django.apps import AppConfig


class OffsiteConfig(AppConfig):
    name = "offsite"
