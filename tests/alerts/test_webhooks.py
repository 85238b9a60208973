"""Outgoing webhooks: signed JSON, retried with backoff, every attempt recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from alerts import services, tasks
from alerts.models import Alert, TenantAlertSettings, WebhookDelivery
from tests.alerts.receiver import SECRET, Receiver, verify

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def receiver_factory() -> Iterator:
    started: list[Receiver] = []

    def start(statuses: list[int]) -> Receiver:
        receiver = Receiver(statuses).__enter__()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.__exit__()


@pytest.fixture
def no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Record the backoff the task asks for. Eager Celery runs a retry at once, but only when
    exceptions do not propagate, so these tests check outcomes on the delivery rows."""
    from portal.celery import app

    saved = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    asked: list[float] = []
    original = tasks.webhook_backoff_seconds

    def record(retries: int) -> float:
        value = original(retries)
        asked.append(value)
        return value

    monkeypatch.setattr(tasks, "webhook_backoff_seconds", record)
    yield asked
    app.conf.task_eager_propagates = saved


def configure_tenant_webhook(tenant, url: str) -> None:
    services.tenant_webhook_set(tenant_id=tenant.pk, url=url, secret=SECRET)


def raise_alert(tenant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return services.alert_raise(
            tenant=tenant, kind=Alert.Kind.QUOTA_OVER, title="Backup storage over the quota",
            message="Usage is 110 GiB", severity=Alert.Severity.WARNING, now=NOW,
        )


@pytest.mark.django_db
def test_a_failing_receiver_gets_retried_until_it_accepts(
    tenant_a, alert_settings, receiver_factory, no_backoff_sleep, django_capture_on_commit_callbacks
):
    receiver = receiver_factory([500, 503, 200])
    configure_tenant_webhook(tenant_a, receiver.url)

    alert = raise_alert(tenant_a, django_capture_on_commit_callbacks)

    assert len(receiver.requests) == 3
    delivery = WebhookDelivery.objects.get(alert=alert)
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert delivery.attempts == 3
    assert delivery.last_status_code == 200
    assert delivery.delivered_at is not None
    bodies = {body for _, body in receiver.requests}
    assert bodies == {delivery.body.encode()}, "every retry sends the same bytes"
    assert all(verify(headers, body) for headers, body in receiver.requests)
    assert {headers["x-portal-delivery"] for headers, _ in receiver.requests} == {str(delivery.uuid)}
    assert len(no_backoff_sleep) == 2
    assert 15 <= no_backoff_sleep[0] <= 30, "exponential backoff: 30 s ceiling first"
    assert 30 <= no_backoff_sleep[1] <= 60, "then 60 s"


@pytest.mark.django_db
def test_the_payload_describes_the_alert_and_tenant(
    tenant_a, alert_settings, receiver_factory, django_capture_on_commit_callbacks
):
    receiver = receiver_factory([200])
    configure_tenant_webhook(tenant_a, receiver.url)
    alert = raise_alert(tenant_a, django_capture_on_commit_callbacks)

    headers, body = receiver.requests[0]
    payload = json.loads(body)
    assert headers["content-type"] == "application/json"
    assert headers["x-portal-event"] == "alert.raised"
    assert payload["event"] == "alert.raised"
    assert payload["tenant"] == {"id": tenant_a.pk, "slug": "tenant-a", "name": "Tenant A"}
    assert payload["alert"]["id"] == alert.pk
    assert payload["alert"]["kind"] == "quota_over"
    assert payload["alert"]["status"] == "open"
    assert payload["id"] == headers["x-portal-delivery"]


@pytest.mark.django_db
def test_a_tampered_body_or_wrong_secret_fails_verification(
    tenant_a, alert_settings, receiver_factory, django_capture_on_commit_callbacks
):
    receiver = receiver_factory([200])
    configure_tenant_webhook(tenant_a, receiver.url)
    raise_alert(tenant_a, django_capture_on_commit_callbacks)
    headers, body = receiver.requests[0]

    assert verify(headers, body)
    assert not verify(headers, body.replace(b"Tenant A", b"Tenant X"))
    assert not verify(headers, body, secret="another-secret")
    assert services.webhook_signature_verify(
        secret=SECRET, timestamp=headers["x-portal-timestamp"], body=body, signature=headers["x-portal-signature"]
    )
    old = str(int(headers["x-portal-timestamp"]) - 3600)
    replayed_signature = services.webhook_signature(secret=SECRET, timestamp=old, body=body)
    assert not services.webhook_signature_verify(
        secret=SECRET, timestamp=old, body=body, signature=replayed_signature
    ), "an hour-old timestamp is refused even with a valid signature"


@pytest.mark.django_db
def test_a_client_error_is_not_retried(
    tenant_a, alert_settings, receiver_factory, django_capture_on_commit_callbacks
):
    receiver = receiver_factory([410])
    configure_tenant_webhook(tenant_a, receiver.url)
    alert = raise_alert(tenant_a, django_capture_on_commit_callbacks)

    delivery = WebhookDelivery.objects.get(alert=alert)
    assert len(receiver.requests) == 1
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.attempts == 1
    assert delivery.last_error == "the endpoint answered HTTP 410 (not retried)"


@pytest.mark.django_db
def test_delivery_gives_up_after_the_maximum_attempts(
    tenant_a, alert_settings, receiver_factory, no_backoff_sleep, django_capture_on_commit_callbacks
):
    alert_settings.PORTAL_WEBHOOK_MAX_ATTEMPTS = 4
    receiver = receiver_factory([500] * 10)
    configure_tenant_webhook(tenant_a, receiver.url)
    alert = raise_alert(tenant_a, django_capture_on_commit_callbacks)

    delivery = WebhookDelivery.objects.get(alert=alert)
    assert len(receiver.requests) == 4
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.attempts == 4
    assert delivery.last_error.endswith("gave up")


@pytest.mark.django_db
def test_connection_errors_are_retried_and_do_not_record_the_url(
    tenant_a, alert_settings, django_capture_on_commit_callbacks, no_backoff_sleep, monkeypatch
):
    calls: list[httpx.Request] = []
    public = [(2, 1, 6, "", ("93.184.216.34", 443))]
    monkeypatch.setattr("core.netguard.socket.getaddrinfo", lambda *args, **kwargs: public)

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            raise httpx.ConnectError("connection refused to https://psa.example/hook?token=in-url")
        return httpx.Response(204)

    configure_tenant_webhook(tenant_a, "https://psa.example/hook?token=in-url")
    with django_capture_on_commit_callbacks(execute=False):
        alert = services.alert_raise(tenant=tenant_a, kind=Alert.Kind.BACKUP_STALE, title="t", now=NOW)
    delivery = WebhookDelivery.objects.get(alert=alert)
    transport = httpx.MockTransport(handler)
    first = services.webhook_delivery_attempt(delivery_id=delivery.pk, transport=transport)
    delivery.refresh_from_db()
    assert first.status == "retry"
    assert "in-url" not in delivery.last_error
    assert delivery.last_error == "the webhook endpoint could not be reached"  # neutral: no receiver text
    services.webhook_delivery_attempt(delivery_id=delivery.pk, transport=transport)
    done = services.webhook_delivery_attempt(delivery_id=delivery.pk, transport=transport)
    delivery.refresh_from_db()
    assert done.status == "succeeded"
    assert delivery.attempts == 3
    again = services.webhook_delivery_attempt(delivery_id=delivery.pk, transport=transport)
    assert again.status == WebhookDelivery.Status.SUCCEEDED
    assert len(calls) == 3, "a delivered message is not re-sent"


@pytest.mark.django_db
def test_the_global_webhook_gets_every_tenants_alerts(
    tenant_a, tenant_b, alert_settings, receiver_factory, django_capture_on_commit_callbacks
):
    receiver = receiver_factory([200, 200])
    alert_settings.PORTAL_WEBHOOK_URL = receiver.url
    alert_settings.PORTAL_WEBHOOK_SECRET = "global-secret-abcdefghijklmnop"
    raise_alert(tenant_a, django_capture_on_commit_callbacks)
    raise_alert(tenant_b, django_capture_on_commit_callbacks)

    assert [json.loads(body)["tenant"]["slug"] for _, body in receiver.requests] == ["tenant-a", "tenant-b"]
    assert all(verify(h, b, secret="global-secret-abcdefghijklmnop") for h, b in receiver.requests)
    assert set(WebhookDelivery.objects.values_list("target", flat=True)) == {"global"}


@pytest.mark.django_db
def test_the_webhook_secret_is_kept_encrypted_and_a_generated_one_is_returned_once(tenant_a):
    row, secret = services.tenant_webhook_set(tenant_id=tenant_a.pk, url="https://psa.example/hook")
    assert secret
    assert len(secret) >= 32
    assert secret not in row.webhook_secret_enc
    _row2, secret2 = services.tenant_webhook_set(tenant_id=tenant_a.pk, url="https://psa.example/hook2")
    assert secret2 is None, "an existing secret is kept and not shown again"
    assert TenantAlertSettings.objects.get(tenant=tenant_a).webhook_secret_enc == row.webhook_secret_enc
    _, secret3 = services.tenant_webhook_set(
        tenant_id=tenant_a.pk, url="https://psa.example/hook2", regenerate_secret=True
    )
    assert secret3
    assert secret3 != secret
