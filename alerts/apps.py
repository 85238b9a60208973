from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self) -> None:
        from alerts import receivers
        from billing.signals import usage_sampled
        from offsite.signals import offsite_staleness_refreshed

        # Quotas are evaluated after every stored metering sample.
        usage_sampled.connect(receivers.on_usage_sampled, dispatch_uid="alerts.quota_on_usage_sampled")
        # The offsite_stale alert follows every staleness refresh at once (the hourly sweep
        # catches what a lost signal missed); one function decides for both.
        offsite_staleness_refreshed.connect(
            receivers.on_offsite_staleness_refreshed, dispatch_uid="alerts.offsite_stale_on_refresh"
        )
