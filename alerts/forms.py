"""Staff forms for quota decisions and alert settings (input parsing only; services decide)."""

from __future__ import annotations

from django import forms

from alerts.models import Alert, QuotaAction


class AlertFilterForm(forms.Form):
    kind = forms.ChoiceField(choices=[("", "All kinds"), *Alert.Kind.choices], required=False)
    status = forms.ChoiceField(
        choices=[("open", "Open"), ("resolved", "Resolved"), ("", "All")], required=False
    )


class GraceExtendForm(forms.Form):
    until = forms.DateTimeField(
        help_text="New end of the grace period (YYYY-MM-DD HH:MM, portal time zone).",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}))


class ExemptForm(forms.Form):
    exempt = forms.BooleanField(required=False, help_text="Never enforce while exempt.")
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}))


class QuotaOverrideForm(forms.Form):
    """Empty fields fall back to the plan's quota."""

    soft_limit_gib = forms.DecimalField(max_digits=12, decimal_places=2, required=False, min_value=0.01)
    hard_limit_gib = forms.DecimalField(max_digits=12, decimal_places=2, required=False, min_value=0.01)
    warning_percent = forms.IntegerField(required=False, min_value=1, max_value=100)
    grace_days = forms.IntegerField(required=False, min_value=0, max_value=365)
    action = forms.ChoiceField(choices=[("", "Plan's action"), *QuotaAction.choices], required=False)


class AlertSettingsForm(forms.Form):
    backup_max_age_hours = forms.IntegerField(
        required=False, min_value=1, max_value=24 * 90,
        help_text="Alert when the newest backup is older than this. Empty: the portal default.",
    )


class WebhookForm(forms.Form):
    url = forms.URLField(required=False, max_length=500, assume_scheme="https")
    enabled = forms.BooleanField(required=False)
    regenerate_secret = forms.BooleanField(required=False, help_text="Issue a new signing secret.")
