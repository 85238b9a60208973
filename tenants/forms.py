"""Forms for the staff pages. They parse input; the rules live in tenants.services."""

from __future__ import annotations

from typing import Any

from django import forms

from plans.models import Plan
from tenants.models import Datastore, PbsHost, Tenant
from tenants.naming import SLUG_MAX_LENGTH
from tenants.selectors import datastore_choices
from tenants.services import KEEP_FIELDS, Retention

KEEP_LABELS = {
    "keep_last": "Keep last",
    "keep_hourly": "Hourly",
    "keep_daily": "Daily",
    "keep_weekly": "Weekly",
    "keep_monthly": "Monthly",
    "keep_yearly": "Yearly",
}


class RetentionFields(forms.Form):
    """keep-* and schedule; empty keep = not limited by it."""

    keep_last = forms.IntegerField(required=False, min_value=1, label=KEEP_LABELS["keep_last"])
    keep_hourly = forms.IntegerField(required=False, min_value=1, label=KEEP_LABELS["keep_hourly"])
    keep_daily = forms.IntegerField(required=False, min_value=1, label=KEEP_LABELS["keep_daily"])
    keep_weekly = forms.IntegerField(required=False, min_value=1, label=KEEP_LABELS["keep_weekly"])
    keep_monthly = forms.IntegerField(required=False, min_value=1, label=KEEP_LABELS["keep_monthly"])
    keep_yearly = forms.IntegerField(required=False, min_value=1, label=KEEP_LABELS["keep_yearly"])
    schedule = forms.CharField(
        max_length=128, initial="daily", help_text="When PBS prunes, e.g. daily, hourly, 'mon..fri 02:00'."
    )

    def retention(self) -> Retention:
        data = self.cleaned_data
        return Retention(**{name: data.get(name) for name in KEEP_FIELDS}, schedule=data.get("schedule") or "daily")

    @property
    def keep_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in KEEP_FIELDS]


class TenantCreateForm(RetentionFields):
    slug = forms.CharField(
        max_length=SLUG_MAX_LENGTH,
        help_text="Lower-case letters, digits, hyphens. Names the PBS user, tokens, namespace and prune job.",
    )
    name = forms.CharField(max_length=200, label="Customer name")
    contact_name = forms.CharField(max_length=200, required=False)
    contact_email = forms.EmailField(required=False)
    plan = forms.ModelChoiceField(queryset=Plan.objects.none(), required=False, empty_label="(no plan)")
    placement = forms.ChoiceField(
        choices=(), initial="auto", help_text="Automatic: enabled, reachable, most free capacity by weight."
    )
    start_now = forms.BooleanField(required=False, initial=True, label="Start onboarding now")

    field_order = ["slug", "name", "contact_name", "contact_email", "plan", "placement"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        defaults = Retention()
        for name in (*KEEP_FIELDS, "schedule"):
            self.fields[name].initial = getattr(defaults, name)
        self.fields["plan"].queryset = Plan.objects.order_by("name")
        stores = datastore_choices()
        choices: list[tuple[str, str]] = [("auto", "Automatic (best datastore of any host)")]
        for host in sorted({store.host for store in stores}, key=lambda h: h.name):
            choices.append((f"host:{host.pk}", f"Automatic on {host.name}"))
        choices += [(f"ds:{store.pk}", f"{store.host.name} / {store.name}") for store in stores]
        self.fields["placement"].choices = choices
        self._stores = {store.pk: store for store in stores}

    def placement_target(self) -> tuple[PbsHost | None, Datastore | None]:
        value = self.cleaned_data.get("placement") or "auto"
        kind, _, ident = value.partition(":")
        if kind == "ds" and ident.isdigit() and int(ident) in self._stores:
            return None, self._stores[int(ident)]
        if kind == "host" and ident.isdigit():
            return PbsHost.objects.filter(pk=int(ident)).first(), None
        return None, None


class RetentionForm(RetentionFields):
    @classmethod
    def for_tenant(cls, tenant: Tenant) -> RetentionForm:
        return cls(initial={**{name: getattr(tenant, name) for name in KEEP_FIELDS}, "schedule": tenant.schedule})


class OffboardForm(forms.Form):
    confirm_slug = forms.CharField(label="Type the tenant's slug to confirm", max_length=64)
    delete_data = forms.BooleanField(
        required=False,
        label="Also delete the namespace with all its backups (cannot be undone)",
    )


class SuspendForm(forms.Form):
    reason = forms.CharField(max_length=200, required=False)


class RestoreTokenForm(forms.Form):
    name = forms.CharField(max_length=40, help_text="e.g. laptop, dr-site; becomes restore-<name>.")
    days = forms.IntegerField(min_value=1, required=False, help_text="Lifetime; empty = the tenant's maximum.")


class HostRegisterForm(forms.Form):
    name = forms.SlugField(max_length=64)
    url = forms.CharField(
        max_length=200, initial="https://", label="URL", help_text="e.g. https://pbs1.example.net:8007"
    )
    fingerprint = forms.CharField(
        max_length=95, required=False,
        help_text="SHA-256 certificate fingerprint (PBS dashboard > Show Fingerprint).",
    )  # fmt: skip
    ca_pem = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, label="CA (PEM)")
    public_address = forms.CharField(
        max_length=255, required=False, help_text="host[:port] customers use, if different."
    )
    token_id = forms.CharField(max_length=64, label="Automation token id", help_text="e.g. portal@pbs!automation")
    token_secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False), max_length=200, label="Automation token secret"
    )
    metering_token_id = forms.CharField(max_length=64, required=False)
    metering_secret = forms.CharField(widget=forms.PasswordInput(render_value=False), max_length=200, required=False)


class HostFingerprintForm(forms.Form):
    fingerprint = forms.CharField(max_length=95)


class DatastoreForm(forms.Form):
    enabled = forms.BooleanField(required=False)
    placement_weight = forms.IntegerField(min_value=0, max_value=1000)
