"""The "Demo data" strip: shown on every page when the portal runs on made-up data, never otherwise."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from tests.fixtures import *  # noqa: F403  (pytest finds fixtures by name)


def test_no_demo_strip_by_default(client: Any, staff_user: Any) -> None:
    client.force_login(staff_user)
    assert b"demo-strip" not in client.get(reverse("tenants:list")).content


def test_the_demo_strip_shows_on_every_page_of_a_demo(client: Any, staff_user: Any, settings: Any) -> None:
    settings.PORTAL_DEMO_DATA = True
    client.force_login(staff_user)
    for url in (reverse("tenants:list"), reverse("home"), reverse("accounts:login")):
        body = client.get(url, follow=True).content.decode()
        assert '<p class="demo-strip" role="note">Demo data:' in body, url
