"""manage.py rotate_encryption_keys: every secret at rest moves to the newest key."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Role
from audit.models import AuditEvent
from core.crypto import SecretUnreadable, decrypt_secret, encrypt_secret
from portal.management.commands.rotate_encryption_keys import encrypted_fields
from tenants.models import PbsHost, TenantToken
from tests.factories import make_datastore, make_host, make_tenant, make_token, make_user

pytestmark = pytest.mark.django_db

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()


def run(*args: str) -> Any:
    out = StringIO()
    call_command("rotate_encryption_keys", *args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


@pytest.fixture
def secrets_under_old_key(settings: Any) -> dict[str, Any]:
    settings.PORTAL_ENCRYPTION_KEYS = [OLD]
    host = make_host(token_secret="host-automation-secret", metering_token_id="m@pbs!usage",
                     metering_secret="host-metering-secret")  # fmt: skip
    tenant = make_tenant(datastore=make_datastore(host=host))
    token = make_token(tenant=tenant, secret_enc=encrypt_secret("tenant-backup-secret"))
    user = make_user(role=Role.OPERATOR, password=None, totp_secret_enc=encrypt_secret("TOTPSEEDBASE32"))
    return {"host": host, "token": token, "user": user}


def test_it_finds_every_encrypted_field() -> None:
    labels = {f"{model._meta.label}.{name}" for model, name in encrypted_fields()}
    assert labels == {
        "accounts.User.totp_secret_enc",
        "alerts.TenantAlertSettings.webhook_secret_enc",
        "offsite.Remote.secret_enc",
        "tenants.PbsHost.metering_secret_enc",
        "tenants.PbsHost.token_secret_enc",
        "tenants.TenantToken.secret_enc",
    }


def test_it_moves_every_secret_to_the_new_key_so_the_old_one_can_go(
    settings: Any, secrets_under_old_key: dict[str, Any]
) -> None:
    settings.PORTAL_ENCRYPTION_KEYS = [NEW, OLD]
    with pytest.raises(CommandError) as info:
        run("--check")
    assert info.value.returncode == 1

    data = run()
    assert sum(f["rotated"] for f in data["fields"]) == 4
    event = AuditEvent.objects.get(action="secrets.rotated")
    assert event.detail["rotated"] == 4
    assert "host-automation-secret" not in json.dumps(event.detail)

    settings.PORTAL_ENCRYPTION_KEYS = [NEW]
    assert run("--check")["fields"]
    host = PbsHost.objects.get(pk=secrets_under_old_key["host"].pk)
    assert decrypt_secret(host.token_secret_enc) == "host-automation-secret"
    assert decrypt_secret(host.metering_secret_enc) == "host-metering-secret"
    assert decrypt_secret(TenantToken.objects.get().secret_enc) == "tenant-backup-secret"
    secrets_under_old_key["user"].refresh_from_db()
    assert decrypt_secret(secrets_under_old_key["user"].totp_secret_enc) == "TOTPSEEDBASE32"


def test_a_second_run_changes_nothing(settings: Any, secrets_under_old_key: dict[str, Any]) -> None:
    settings.PORTAL_ENCRYPTION_KEYS = [NEW, OLD]
    run()
    before = PbsHost.objects.get().token_secret_enc
    data = run()
    assert sum(f["rotated"] for f in data["fields"]) == 0
    assert PbsHost.objects.get().token_secret_enc == before
    assert AuditEvent.objects.filter(action="secrets.rotated").count() == 1


def test_it_names_values_no_key_can_read_and_leaves_them_alone(
    settings: Any, secrets_under_old_key: dict[str, Any]
) -> None:
    settings.PORTAL_ENCRYPTION_KEYS = [NEW]  # the old key was dropped before rotating
    host = secrets_under_old_key["host"]
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as info:
        call_command("rotate_encryption_keys", stdout=out, stderr=err)
    assert info.value.returncode == 1
    assert "Put that key back" in str(info.value)
    assert f"ids {host.pk}" in out.getvalue()
    assert "host-automation-secret" not in out.getvalue() + str(info.value)
    assert PbsHost.objects.get().token_secret_enc == host.token_secret_enc
    with pytest.raises(SecretUnreadable):
        decrypt_secret(host.token_secret_enc)
