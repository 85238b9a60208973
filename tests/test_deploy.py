"""The deployment files under deploy/, the Dockerfile and the health-check probe work as documented."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from portal import healthcheck

ROOT = Path(__file__).resolve().parent.parent


def test_the_example_environment_passes_the_deploy_checks(tmp_path: Path) -> None:
    """deploy/pbs-portal.env.example, with its secret files in place, is a valid production set."""
    secrets = {
        "django_secret_key": Fernet.generate_key().decode() * 2,
        "portal_encryption_keys": Fernet.generate_key().decode(),
        "database_url": "postgres://portal:pw@127.0.0.1:5432/portal",
        "smtp_password": "pw",
    }
    for name, value in secrets.items():
        (tmp_path / name).write_text(value + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PORTAL_", "DATABASE_URL"))}
    for line in (ROOT / "deploy" / "pbs-portal.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value.replace("/etc/pbs-portal/secrets", str(tmp_path))
    env["PORTAL_VAR_DIR"] = str(tmp_path / "var")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_collects_static_files_with_the_production_storage() -> None:
    """With DEBUG on, collectstatic writes no manifest and every production page fails."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    run = re.search(r"RUN DJANGO_DEBUG=(\d)[^\n]*\\\n(?:.*\\\n)*?.*collectstatic", dockerfile)
    assert run is not None, "collectstatic step not found"
    assert run.group(1) == "0"
    assert "staticfiles.json" in dockerfile


def test_the_units_use_the_documented_paths() -> None:
    units = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
    assert {u.name for u in units} >= {
        "pbs-portal-migrate.service", "pbs-portal-web.service", "pbs-portal-worker.service", "pbs-portal-beat.service",
    }  # fmt: skip
    for unit in units:
        text = unit.read_text()
        assert "User=pbs-portal" in text, unit.name
        assert "EnvironmentFile=/etc/pbs-portal/pbs-portal.env" in text, unit.name
        assert "NoNewPrivileges=yes" in text, unit.name
        assert "ProtectSystem=strict" in text, unit.name
    assert os.access(ROOT / "deploy" / "pbs-portal-manage", os.X_OK)


@pytest.mark.django_db(transaction=True)
def test_the_health_probe_reports_a_running_web_process(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", "localhost,portal.example.net")
    assert healthcheck.check(f"{live_server.url}/healthz") == (True, f"{live_server.url}/healthz: ok")
    assert healthcheck.main(["healthcheck", f"{live_server.url}/healthz"]) == 0


def test_the_health_probe_fails_when_nothing_listens() -> None:
    healthy, message = healthcheck.check("http://127.0.0.1:9/healthz", timeout=2)
    assert not healthy
    assert "127.0.0.1:9" in message
