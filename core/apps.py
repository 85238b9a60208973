from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared plumbing every app may use: encryption at rest, cross-app signal sending, the HTMX
    partial rule, the transient-error rule and the management commands' output helpers. No models."""

    name = "core"
    verbose_name = "Shared plumbing"
