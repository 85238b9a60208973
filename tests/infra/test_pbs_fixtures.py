"""The simulated-PBS fixtures: pbs_sim, pbs_https, pbs_host."""

from __future__ import annotations

import pytest

from core.crypto import decrypt_secret
from pbsclient import PbsClient
from tenants.pbs import client_for_host
from tests.infra.tasks import pbs_version


def test_pbs_sim_has_two_datastores_and_an_admin_token(pbs_sim, pbs_admin_token) -> None:
    token_id, secret = pbs_admin_token
    with PbsClient(
        base_url="https://pbs.test:8007", token_id=token_id, token_secret=secret,
        transport=pbs_sim.transport(),
    ) as client:
        names = sorted(item.store for item in client.datastore_list())
        status = client.datastore_status("store1")
    assert token_id == "root@pam!portal"
    assert names == ["store1", "store2"]
    assert status.total == 4 * 2**40


def test_pbs_https_serves_pbs_sim_with_a_pinnable_certificate(pbs_https, pbs_admin_token) -> None:
    token_id, secret = pbs_admin_token
    with PbsClient(
        base_url=pbs_https.url, token_id=token_id, token_secret=secret,
        fingerprint=pbs_https.fingerprint,
    ) as client:
        assert client.version().version.startswith("4.")


@pytest.mark.django_db
def test_pbs_host_registers_a_server_with_its_pin_and_an_encrypted_secret(
    pbs_host, pbs_https, pbs_admin_token
) -> None:
    host = pbs_host()
    assert (host.url, host.fingerprint, host.token_id) == (
        pbs_https.url, pbs_https.fingerprint, pbs_admin_token[0]
    )
    assert pbs_admin_token[1] not in host.token_secret_enc
    assert decrypt_secret(host.token_secret_enc) == pbs_admin_token[1]
    assert sorted(host.datastores.values_list("name", flat=True)) == ["store1", "store2"]
    with client_for_host(host) as client:
        assert client.version().version.startswith("4.")


@pytest.mark.django_db
def test_pbs_host_can_register_an_in_process_simulator(pbs_host, pbs_sim_factory) -> None:
    first, second = pbs_sim_factory(), pbs_sim_factory()
    first.seed_snapshot(
        store="store1", ns="clients/acme", backup_type="vm", backup_id="100",
        backup_time=1_700_000_000, size=2**30,
    )
    host_a, host_b = pbs_host(first, name="pbs-a"), pbs_host(second, name="pbs-b")
    with client_for_host(host_a) as client_a, client_for_host(host_b) as client_b:
        assert [g.backup_id for g in client_a.group_list("store1", ns="clients/acme")] == ["100"]
        assert [ns.ns for ns in client_b.namespace_list("store1")] == [""]  # only the root
    assert len(first.request_log) == 1
    assert len(second.request_log) == 1


@pytest.mark.celery
def test_the_worker_reaches_a_simulated_host_over_https(pbs_host, pbs_https) -> None:
    host = pbs_host()
    assert pbs_version.delay(host.pk).get(timeout=60).startswith("4.")
    assert ("GET", "/api2/json/version", 200) in pbs_https.sim.request_log
