"""Webhooks reach the public internet only: no loopback, private, link-local or metadata
address, checked when the URL is saved and again at send time, and the request goes to the
address that was checked (a DNS answer cannot change in between)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from alerts import services
from alerts.models import Alert, WebhookDelivery
from alerts.services.base import QuotaError
from core import netguard

pytestmark = pytest.mark.django_db


@pytest.fixture
def production_guard(settings: Any) -> Any:
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    settings.DEBUG = False
    return settings


@pytest.mark.parametrize(
    "url",
    [
        "https://localhost/hook", "https://127.0.0.1/hook", "https://10.0.0.5/hook", "https://192.168.1.1/hook",
        "https://172.16.0.1/hook", "https://169.254.169.254/latest/meta-data", "https://[::1]/hook",
        "http://hooks.example.com/hook", "https://user:pw@hooks.example.com/hook",
    ],
)
def test_internal_or_plain_addresses_are_refused_when_saved(production_guard: Any, tenant_a: Any, url: str) -> None:
    with pytest.raises(QuotaError):
        services.tenant_webhook_set(tenant_id=tenant_a.pk, url=url)


def _delivery(tenant: Any, url: str, monkeypatch: pytest.MonkeyPatch, address: str) -> WebhookDelivery:
    monkeypatch.setattr(
        "core.netguard.socket.getaddrinfo", lambda *args, **kwargs: [(2, 1, 6, "", (address, 443))]
    )
    services.tenant_webhook_set(tenant_id=tenant.pk, url=url)
    services.alert_raise(tenant=tenant, kind=Alert.Kind.BACKUP_STALE, title="t")
    return WebhookDelivery.objects.get(tenant=tenant)


def test_a_name_resolving_to_an_internal_address_is_refused_at_send_time(
    production_guard: Any, tenant_a: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    sent: list[httpx.Request] = []
    with django_capture_on_commit_callbacks(execute=False):
        delivery = _delivery(tenant_a, "https://hooks.example.com/x", monkeypatch, "169.254.169.254")
    outcome = services.webhook_delivery_attempt(
        delivery_id=delivery.pk, transport=httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(204))
    )
    assert outcome.status == "failed"
    assert outcome.error == netguard.REFUSED
    assert sent == []


def test_the_request_goes_to_the_checked_address_with_the_name_for_tls(
    production_guard: Any, tenant_a: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204)

    with django_capture_on_commit_callbacks(execute=False):
        delivery = _delivery(tenant_a, "https://hooks.example.com/x?k=1", monkeypatch, "93.184.216.34")
    outcome = services.webhook_delivery_attempt(delivery_id=delivery.pk, transport=httpx.MockTransport(handler))
    assert outcome.status == "succeeded"
    (request,) = sent
    assert str(request.url) == "https://93.184.216.34/x?k=1"
    assert request.headers["Host"] == "hooks.example.com"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
