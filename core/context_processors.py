from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict[str, object]:
    """Site-wide facts every page may show: whether this portal runs on made-up demo data."""
    return {"demo_data": settings.PORTAL_DEMO_DATA}
