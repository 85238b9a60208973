"""Forms for the accounting pages: closing a month, correcting an invoice, plans."""

from __future__ import annotations

from django import forms

from plans.models import Plan


class CorrectionForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text="Shown on the credit note and the new invoice.",
    )
    plan = forms.ModelChoiceField(
        queryset=Plan.objects.order_by("name"),
        required=False,
        empty_label="Tenant's current plan",
        help_text="Bill the corrected invoice with another plan.",
    )
    reissue = forms.BooleanField(
        required=False,
        initial=True,
        label="Issue a corrected invoice",
        help_text="Untick to only credit the invoice (cancel it).",
    )


class PlanForm(forms.ModelForm):
    class Meta:
        model = Plan
        fields = [
            "name",
            "currency",
            "metric",
            "included_gib",
            "price_per_gib",
            "base_fee",
            "minimum_charge",
            "offsite_price_per_gib",
            "is_active",
        ]
