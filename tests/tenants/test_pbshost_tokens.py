"""manage.py pbshost set-token: rotating the automation and metering tokens of a host."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from core.crypto import decrypt_secret
from tenants.models import PbsHost
from tenants.pbs import install_transport, uninstall_transport

pytestmark = pytest.mark.django_db


def run_json(*args: str) -> Any:
    out = StringIO()
    call_command(*args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


@pytest.fixture
def host(pbs_sim: Any, pbs_admin_token: Any, tmp_path: Path) -> Any:
    url = "https://pbs-rot.sim.invalid:8007"
    install_transport(url, pbs_sim.transport())
    secret_file = tmp_path / "automation.secret"
    secret_file.write_text(pbs_admin_token[1])
    run_json("pbshost", "add", "--name", "pbs-rot", "--url", url, "--fingerprint", ":".join(["ab"] * 32),
             "--token-id", pbs_admin_token[0], "--token-secret-file", str(secret_file))  # fmt: skip
    yield PbsHost.objects.get(name="pbs-rot")
    uninstall_transport(url)


def test_a_rejected_token_changes_nothing(host: PbsHost, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.secret"
    wrong.write_text("not-the-secret")
    before = (host.token_id, host.token_secret_enc)

    with pytest.raises(CommandError) as info:
        run_json("pbshost", "set-token", "pbs-rot", "--token-id", "portal@pbs!new", "--token-secret-file", str(wrong))

    assert info.value.returncode == 1
    assert "nothing was changed" in str(info.value)
    assert "not-the-secret" not in str(info.value)
    host.refresh_from_db()
    assert (host.token_id, host.token_secret_enc) == before
    assert not AuditEvent.objects.filter(action="host.update").exists()


def test_a_malformed_token_id_is_bad_input(host: PbsHost, tmp_path: Path) -> None:
    secret = tmp_path / "s"
    secret.write_text("x")
    with pytest.raises(CommandError) as info:
        run_json("pbshost", "set-token", "pbs-rot", "--token-id", "no-realm", "--token-secret-file", str(secret))
    assert info.value.returncode == 2


def test_the_metering_token_is_replaced_and_checked(host: PbsHost, pbs_admin_token: Any, tmp_path: Path) -> None:
    secret = tmp_path / "metering.secret"
    secret.write_text(pbs_admin_token[1])

    data = run_json("pbshost", "set-token", "pbs-rot", "--metering", "--token-id", pbs_admin_token[0],
                    "--token-secret-file", str(secret))  # fmt: skip

    assert data["metering_token_id"] == pbs_admin_token[0]
    assert data["reachable"] is True
    host.refresh_from_db()
    assert decrypt_secret(host.metering_secret_enc) == pbs_admin_token[1]
    assert host.token_id == pbs_admin_token[0]  # the automation token is untouched
    event = AuditEvent.objects.filter(action="host.update").latest("pk")
    assert event.detail == {"changed": ["metering_token_id", "metering_secret"]}
