"""`manage.py demo_seed` (what `make run` does after starting the simulators)."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from accounts.models import User
from pbssim import Simulator
from pbssim.demo import seed_demo
from plans.models import Plan
from tenants.models import OnboardingRun, PbsHost, Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def seed(monkeypatch, django_capture_on_commit_callbacks):
    def run(hosts: list[dict[str, str]]) -> str:
        monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(hosts)))
        out = io.StringIO()
        with django_capture_on_commit_callbacks(execute=True):  # the onboarding runs are enqueued on commit
            call_command("demo_seed", stdout=out)
        return out.getvalue()

    return run


def test_demo_seed_adopts_the_simulators_customers_and_is_idempotent(seed, pbs_https_factory) -> None:
    sim = Simulator()
    seed_demo(sim, host_index=0)
    token_id, secret = sim.bootstrap_admin_token()
    server = pbs_https_factory(sim)
    info = {"name": "pbs1", "url": server.url, "fingerprint": server.fingerprint,
            "token_id": token_id, "token_secret": secret}  # fmt: skip

    first = seed([info])

    host = PbsHost.objects.get(name="pbs1")
    assert host.reachable
    assert host.fingerprint == server.fingerprint
    assert sorted(Tenant.objects.values_list("slug", flat=True)) == ["acme", "globex", "initech"]
    assert OnboardingRun.objects.count() == 3  # eager Celery in tests: the runs already ran
    assert set(Tenant.objects.values_list("status", flat=True)) == {Tenant.Status.ACTIVE}
    assert Plan.objects.count() == 3
    assert {u.username for u in User.objects.all()} == {"admin", "accounting", "acme-admin"}
    assert first.count("(shown once)") == 3
    assert secret not in first

    # The simulator restarted with its state kept but a new bootstrap secret.
    sim._bootstrap_secret = None
    _new_token_id, new_secret = sim.bootstrap_admin_token()
    second = seed([{**info, "token_secret": new_secret}])

    assert "(shown once)" not in second
    assert Tenant.objects.count() == 3
    assert OnboardingRun.objects.count() == 3
    host.refresh_from_db()
    assert host.reachable, host.last_error
