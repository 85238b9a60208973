"""Forms for client self-service."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import MaxValueValidator


class RestoreTokenForm(forms.Form):
    name = forms.CharField(
        max_length=48,
        help_text="Lower-case letters, digits and hyphens, e.g. laptop-restore.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    days = forms.IntegerField(label="Valid for (days)", min_value=1)

    def __init__(self, *args: Any, max_days: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["days"].max_value = max_days
        self.fields["days"].validators.append(MaxValueValidator(max_days))
        self.fields["days"].widget.attrs.update({"min": 1, "max": max_days})
        self.fields["days"].initial = min(30, max_days)
        self.fields["days"].help_text = f"At most {max_days} days."
