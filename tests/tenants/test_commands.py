"""manage.py pbshost / tenant: exit codes, --json, credentials files."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tenants.models import PbsHost, Tenant, TenantToken
from tenants.pbs import install_transport, uninstall_transport

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_json(*args: str) -> Any:
    return json.loads(run(*args, "--json")[0])


@pytest.fixture
def sim_url(pbs_sim: Any) -> Any:
    url = "https://pbs-cli.sim.invalid:8007"
    install_transport(url, pbs_sim.transport())
    yield url
    uninstall_transport(url)


def test_pbshost_add_list_check(sim_url: str, pbs_admin_token: Any, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(pbs_admin_token[1] + "\n")
    fp = ":".join(["ab"] * 32)

    data = run_json("pbshost", "add", "--name", "pbs-cli", "--url", sim_url, "--fingerprint", fp,
                    "--token-id", pbs_admin_token[0], "--token-secret-file", str(secret_file))  # fmt: skip
    assert data["reachable"] is True
    assert [d["name"] for d in data["datastores"]] == ["store1", "store2"]
    assert pbs_admin_token[1] not in json.dumps(data)
    assert [h["name"] for h in run_json("pbshost", "list")] == ["pbs-cli"]
    assert run_json("pbshost", "check", "pbs-cli")["pbs_version"].startswith("4.2")

    with pytest.raises(CommandError) as info:
        run("pbshost", "check", "nope")
    assert info.value.returncode == 2
    # Rotating the automation token: the new one is checked at once.
    assert run_json("pbshost", "set-token", "pbs-cli", "--token-id", pbs_admin_token[0],
                    "--token-secret-file", str(secret_file))["reachable"] is True  # fmt: skip
    secret_file.write_text("wrong-secret")
    with pytest.raises(CommandError) as info:
        run("pbshost", "add", "--name", "pbs-2", "--url", sim_url, "--fingerprint", fp,
            "--token-id", pbs_admin_token[0], "--token-secret-file", str(secret_file))  # fmt: skip
    assert info.value.returncode == 1
    assert "rejected the automation token" in str(info.value)
    assert not PbsHost.objects.filter(name="pbs-2").exists()


def test_tenant_create_onboard_wait_writes_a_private_credentials_file(
    sim_host: Any, tmp_path: Path, pbs_sim: Any
) -> None:
    created = run_json("tenant", "create", "--slug", "acme", "--name", "Acme", "--host", "pbs-a",
                       "--datastore", "store1", "--keep-last", "2")  # fmt: skip
    assert created["status"] == "pending"
    assert created["retention"]["keep_last"] == 2
    creds = tmp_path / "acme.env"

    data = run_json("tenant", "onboard", "acme", "--wait", "--credentials-out", str(creds))

    assert data["runs"][0]["status"] == "succeeded"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    content = creds.read_text()
    secret = next(line.split("=", 1)[1] for line in content.splitlines() if line.startswith("PBS_PASSWORD="))
    assert len(secret) == 36
    assert "PBS_REPOSITORY=acme@pbs!backup@pbs-a.sim.invalid:8007:store1" in content
    token = TenantToken.objects.get(tenant__slug="acme", revoked_at__isnull=True)
    assert token.secret_enc == ""
    assert token.revealed_at is not None
    # An existing file is never overwritten.
    with pytest.raises(CommandError) as info:
        run("tenant", "rotate", "acme", "--credentials-out", str(creds))
    assert info.value.returncode == 2


def test_tenant_lifecycle_commands(sim_host: Any, tmp_path: Path) -> None:
    run("tenant", "create", "--slug", "acme", "--name", "Acme")
    run("tenant", "create", "--slug", "beta", "--name", "Beta")
    out = run_json("tenant", "onboard", "acme", "beta", "--wait")
    assert [r["status"] for r in out["runs"]] == ["succeeded", "succeeded"]
    assert {t["slug"] for t in run_json("tenant", "list", "--status", "active")} == {"acme", "beta"}
    assert run_json("tenant", "suspend", "acme", "--reason", "test")["status"] == "suspended"
    assert run_json("tenant", "resume", "acme")["status"] == "active"
    rotated = run_json("tenant", "rotate", "acme", "--credentials-out", str(tmp_path / "new.env"))
    assert rotated["tokenid"] == "acme@pbs!backup"
    assert run_json("tenant", "drift", "acme")["findings"] == []

    from tenants.pbs import client_for_host

    with client_for_host(sim_host) as client:
        client.prune_job_delete("t-acme")
    with pytest.raises(CommandError) as info:
        run("tenant", "drift", "acme")
    assert info.value.returncode == 1
    repaired = run_json("tenant", "drift", "acme", "--repair", "--wait")
    assert repaired["findings_after"] == []

    with pytest.raises(CommandError) as info:
        run("tenant", "offboard", "acme")
    assert info.value.returncode == 2
    off = run_json("tenant", "offboard", "acme", "--yes", "--delete-data")
    assert off["status"] == "succeeded"
    assert Tenant.objects.get(slug="acme").status == Tenant.Status.OFFBOARDED


def test_tenant_create_refuses_bad_input_with_exit_code_2(sim_host: Any) -> None:
    for args in (["--slug", "Not Valid", "--name", "x"], ["--slug", "ok", "--name", "x", "--host", "nope"]):
        with pytest.raises(CommandError) as info:
            run("tenant", "create", *args)
        assert info.value.returncode == 2


def test_onboarding_an_active_tenant_again_is_a_no_op_or_a_convergence_check(sim_host: Any, pbs_sim: Any) -> None:
    """Automation re-runs `tenant onboard` freely: an active tenant needs nothing (exit 0), and
    with --wait the convergence check reports zero changes and writes nothing on PBS."""
    run("tenant", "create", "--slug", "acme", "--name", "Acme")
    run("tenant", "onboard", "acme", "--wait", "--timeout", "60")
    out, _ = run("tenant", "onboard", "acme")
    assert "acme: already active, nothing to do" in out
    writes = sum(1 for method, _path, _status in pbs_sim.request_log if method != "GET")
    out, _ = run("tenant", "onboard", "acme", "--wait", "--timeout", "60")
    assert "acme: already active; convergence check made 0 change(s)" in out
    assert sum(1 for method, _path, _status in pbs_sim.request_log if method != "GET") == writes
