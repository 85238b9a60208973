from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self) -> None:
        # Quotas are evaluated after every stored metering sample. The billing app sends the
        # signal; until it exists there is nothing to listen to.
        try:
            from billing.signals import usage_sampled
        except ImportError:
            return
        from alerts.receivers import on_usage_sampled

        usage_sampled.connect(on_usage_sampled, dispatch_uid="alerts.quota_on_usage_sampled")
