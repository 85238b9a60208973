"""The project as a whole: lint, migrations, deploy checks, and independence from outside files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
PRODUCT_DIRS = ["portal", "core", "plans", "devstack", "accounts", "audit", "tenants", "billing", "selfservice",
                "offsite", "alerts",
                "pbsclient", "pbssim", "templates", "static"]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=ROOT, capture_output=True, text=True, env=env, check=False)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PORTAL_", "DATABASE_URL"))}
    env.update(extra)
    return env


def test_the_code_is_ruff_clean() -> None:
    result = _run(sys.executable, "-m", "ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_pbsclient_type_checks_strictly() -> None:
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_models_and_migrations_agree(tmp_path: Path) -> None:
    env = _clean_env(DJANGO_DEBUG="1", PORTAL_CACHE_REDIS="0", PORTAL_VAR_DIR=str(tmp_path))
    result = _run(sys.executable, "manage.py", "makemigrations", "--check", "--dry-run", env=env)
    assert result.returncode == 0, "models changed without a migration:\n" + result.stdout + result.stderr


def test_deploy_checks_are_clean_with_production_settings(tmp_path: Path) -> None:
    env = _clean_env(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=Fernet.generate_key().decode() * 2,
        PORTAL_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DJANGO_ALLOWED_HOSTS="portal.example.net",
        DATABASE_URL="postgres://portal:pw@127.0.0.1:5432/portal",
        REDIS_URL="redis://127.0.0.1:6379/0",
        PORTAL_VAR_DIR=str(tmp_path),
    )
    result = _run(sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_djangos_debug_variable_it_runs_as_production(tmp_path: Path) -> None:
    """Debug pages, the public development secret and a derived encryption key are for
    development only, which must be asked for (DJANGO_DEBUG=1)."""
    result = _run(sys.executable, "manage.py", "check", env=_clean_env(PORTAL_VAR_DIR=str(tmp_path)))
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr
    env = _clean_env(PORTAL_VAR_DIR=str(tmp_path), DJANGO_SECRET_KEY=Fernet.generate_key().decode() * 2)
    result = _run(sys.executable, "manage.py", "check", env=env)
    assert result.returncode != 0
    assert "PORTAL_ENCRYPTION_KEYS must be set" in result.stderr


def test_production_refuses_to_start_without_its_secrets(tmp_path: Path) -> None:
    env = _clean_env(DJANGO_DEBUG="0", PORTAL_VAR_DIR=str(tmp_path))
    result = _run(sys.executable, "manage.py", "check", env=env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_the_product_does_not_read_files_outside_the_repository() -> None:
    offenders = []
    for directory in PRODUCT_DIRS:
        for path in (ROOT / directory).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".html", ".js", ".css"}:
                text = path.read_text(encoding="utf-8", errors="replace")
                if "../shared" in text or "pbs-api-schema" in text:
                    offenders.append(str(path.relative_to(ROOT)))
    assert offenders == [], f"product code must not depend on files outside the repo: {offenders}"


def test_production_requires_a_second_factor_for_staff_unless_switched_off(tmp_path: Path) -> None:
    env = _clean_env(
        DJANGO_SECRET_KEY=Fernet.generate_key().decode() * 2,
        PORTAL_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        PORTAL_VAR_DIR=str(tmp_path),
    )
    probe = "from django.conf import settings; print(settings.PORTAL_REQUIRE_STAFF_TOTP)"
    result = _run(sys.executable, "manage.py", "shell", "-c", probe, env=env)
    assert result.stdout.strip().splitlines()[-1] == "True", result.stderr
    result = _run(sys.executable, "manage.py", "shell", "-c", probe, env={**env, "PORTAL_REQUIRE_STAFF_TOTP": "0"})
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr
