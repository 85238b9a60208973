from django.apps import AppConfig


class OffsiteConfig(AppConfig):
    name = "offsite"

    def ready(self) -> None:
        from offsite import receivers
        from tenants import signals

        signals.tenant_run_finished.connect(receivers.on_tenant_run_finished, dispatch_uid="offsite.run_finished")
        signals.host_drift_checking.connect(receivers.on_host_drift_checking, dispatch_uid="offsite.host_drift")
        signals.host_repair_requested.connect(receivers.on_host_repair_requested, dispatch_uid="offsite.host_repair")
