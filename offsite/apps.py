from django.apps import AppConfig


class OffsiteConfig(AppConfig):
    name = "offsite"

    def ready(self) -> None:
        from offsite.receivers import on_tenant_run_finished
        from tenants.signals import tenant_run_finished

        tenant_run_finished.connect(on_tenant_run_finished, dispatch_uid="offsite.tenant_run_finished")
