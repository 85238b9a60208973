from django.apps import AppConfig


class DevstackConfig(AppConfig):
    """`make run`'s stack runner and demo data; the only product-side code that talks to pbssim."""

    name = "devstack"
    verbose_name = "Development stack and demo data"
