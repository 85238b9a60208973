"""URL converter for a billing period ``YYYY-MM``, registered once as ``<period:...>``."""

from django.urls import register_converter


class PeriodConverter:
    regex = r"\d{4}-\d{2}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(PeriodConverter, "period")
