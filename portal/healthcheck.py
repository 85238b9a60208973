"""``python -m portal.healthcheck [URL]``: exit 0 when the web process answers ``/healthz``.

For container and service-manager health checks (docker-compose's ``web`` service). It
asks gunicorn directly, as the reverse proxy would: with the first name of
``DJANGO_ALLOWED_HOSTS`` as ``Host`` and ``X-Forwarded-Proto: https`` (honoured only with
``PORTAL_BEHIND_TLS_PROXY=1``), so production's HTTPS redirect does not answer instead of
the view. ``/healthz`` runs one database query; a 200 means the web process and the
database are up. Standard library only: no Django start-up cost every few seconds.
"""

from __future__ import annotations

import http.client
import os
import sys
from urllib.parse import urlsplit

DEFAULT_URL = "http://127.0.0.1:8000/healthz"


def host_header() -> str:
    """The first allowed host name (a leading-dot wildcard made concrete), else localhost."""
    names = [n.strip() for n in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if n.strip()]
    first = names[0] if names else "localhost"
    if first == "*":
        return "localhost"
    return "healthcheck" + first if first.startswith(".") else first


def check(url: str = DEFAULT_URL, *, timeout: float = 5.0) -> tuple[bool, str]:
    """(healthy, one line saying why)."""
    parts = urlsplit(url)
    conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_class(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request(
            "GET", parts.path or "/healthz", headers={"Host": host_header(), "X-Forwarded-Proto": "https"}
        )
        response = conn.getresponse()
        body = response.read(200).decode("utf-8", "replace")
    except OSError as exc:
        return False, f"{url}: {exc}"
    finally:
        conn.close()
    if response.status == 200:
        return True, f"{url}: ok"
    hint = ""
    if response.status in {301, 302}:
        hint = " (HTTPS redirect: behind a TLS proxy set PORTAL_BEHIND_TLS_PROXY=1)"
    elif response.status == 400:
        hint = " (is the Host header in DJANGO_ALLOWED_HOSTS?)"
    return False, f"{url}: HTTP {response.status}{hint} {body[:80]}".rstrip()


def main(argv: list[str]) -> int:
    healthy, message = check(argv[1] if len(argv) > 1 else DEFAULT_URL)
    print(message, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
