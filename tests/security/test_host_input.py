"""Bad PBS host input is a 400 naming the field, never a 500: a URL with credentials, a path
or a bad port, and a CA that is not a PEM certificate."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tenants.models import PbsHost

pytestmark = pytest.mark.django_db

FINGERPRINT = ":".join(["ab"] * 32)


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"url": "https://root:secret@pbs.example.net:8007"}, "url"),
        ({"url": "https://pbs.example.net:8007/api2/json"}, "url"),
        ({"url": "https://pbs.example.net:99999"}, "url"),
        ({"url": "https://pbs.example.net:port"}, "url"),
        ({"url": "http://pbs.example.net:8007"}, "url"),
        ({"fingerprint": "", "ca_pem": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----"}, "ca_pem"),
        ({"fingerprint": "", "ca_pem": "just text"}, "ca_pem"),
    ],
)
def test_bad_host_input_is_a_400_naming_the_field(staff_user: Any, fields: dict[str, str], bad_field: str) -> None:
    api = APIClient()
    api.force_authenticate(staff_user)
    body = {
        "name": "pbs-x", "url": "https://pbs.example.net:8007", "fingerprint": FINGERPRINT,
        "token_id": "root@pam!portal", "token_secret": "0" * 36, **fields,
    }  # fmt: skip
    response = api.post("/api/v1/hosts/", body, format="json")
    assert response.status_code == 400, response.content
    assert bad_field in response.json()["errors"]
    assert not PbsHost.objects.exists()
