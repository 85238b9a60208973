"""PBS hosts and datastores: register, update, pin, check."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from core.crypto import encrypt_secret
from pbsclient import validation
from pbsclient.errors import FingerprintMismatch, PbsConnectionError, PbsError, PbsHttpError
from tenants.hints import hint_for
from tenants.models import (
    Datastore,
    PbsHost,
)
from tenants.pbs import client_for_host, client_for_values
from tenants.services.base import REGENERATE_SINCE, LifecycleError


def _host_url_problem(url: str) -> str:
    """Why ``url`` is not a PBS base URL (https, a host, an optional port, nothing else)."""
    example = "PBS is reached as https://host:8007 (no user, path, query or fragment)."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return example
    if parts.scheme != "https" or not parts.hostname:
        return example
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "Leave credentials out of the URL: the portal signs in with the API token. " + example
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return example
    if port is not None and not 1 <= port <= 65535:
        return example
    return ""


def _ca_pem_problem(ca_pem: str) -> str:
    """Why ``ca_pem`` is not a PEM certificate the portal can verify PBS against."""
    try:
        certificates = x509.load_pem_x509_certificates(ca_pem.encode())
    except ValueError:
        certificates = []
    return "" if certificates else "Paste the CA certificate in PEM form (-----BEGIN CERTIFICATE----- ...)."


def _validate_host_values(
    *, name: str, url: str, token_id: str, fingerprint: str, ca_pem: str, metering_token_id: str
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        errors.setdefault("name", []).append("Use letters, digits, '-' and '_'.")
    url_problem = _host_url_problem(url)
    if url_problem:
        errors.setdefault("url", []).append(url_problem)
    for field_name, value in (("token_id", token_id), ("metering_token_id", metering_token_id)):
        if value:
            try:
                validation.validate_tokenid(value)
            except ValueError as exc:
                errors.setdefault(field_name, []).append(str(exc))
    if fingerprint:
        try:
            validation.validate_fingerprint(fingerprint)
        except ValueError as exc:
            errors.setdefault("fingerprint", []).append(str(exc))
    if ca_pem and _ca_pem_problem(ca_pem):
        errors.setdefault("ca_pem", []).append(_ca_pem_problem(ca_pem))
    if not fingerprint and not ca_pem:
        errors.setdefault("fingerprint", []).append(
            "Pin the certificate's SHA-256 fingerprint (PBS dashboard > Show Fingerprint, or "
            "'proxmox-backup-manager cert info'), or give the CA that signed it."
        )
    return errors


def pbshost_register(
    *,
    name: str,
    url: str,
    token_id: str,
    token_secret: str,
    actor: Any = None,
    fingerprint: str = "",
    ca_pem: str = "",
    metering_token_id: str = "",
    metering_secret: str = "",
    public_address: str = "",
    check: bool = True,
) -> PbsHost:
    """Register a PBS host.

    1. Validate names, URL, token ids and the fingerprint format.
    2. With ``check``: connect with the pin and the automation token (and the metering
       token, if any) before anything is saved, so a typo never becomes a host.
    3. Save the host with its secrets encrypted, audit it, then run a health check
       (version, capacity, datastores, the automation token's privileges).
    """
    url = url.strip().rstrip("/")
    fingerprint = fingerprint.strip().lower()
    errors = _validate_host_values(
        name=name, url=url, token_id=token_id, fingerprint=fingerprint, ca_pem=ca_pem,
        metering_token_id=metering_token_id,
    )  # fmt: skip
    if not token_secret:
        errors.setdefault("token_secret", []).append("The automation token's secret is required.")
    if metering_token_id and not metering_secret:
        errors.setdefault("metering_secret", []).append("The metering token's secret is required.")
    if PbsHost.objects.filter(name=name).exists():
        errors.setdefault("name", []).append(f"A host named '{name}' exists.")
    if errors:
        raise ValidationError(errors)
    if check:
        pairs = [(token_id, token_secret)]
        if metering_token_id:
            pairs.append((metering_token_id, metering_secret))
        for tid, secret in pairs:
            with client_for_values(
                url=url, token_id=tid, token_secret=secret, fingerprint=fingerprint, ca_pem=ca_pem,
                name=name,
            ) as client:  # fmt: skip
                try:
                    client.datastore_list()
                except PbsError as exc:
                    probe = PbsHost(name=name, url=url, token_id=tid)
                    raise LifecycleError(f"Cannot use {tid} on {url}: {exc}", hint_for(exc, host=probe)) from exc
    with transaction.atomic():
        host = PbsHost.objects.create(
            name=name,
            url=url,
            fingerprint=fingerprint,
            ca_pem=ca_pem,
            public_address=public_address.strip(),
            token_id=token_id,
            token_secret_enc=encrypt_secret(token_secret),
            metering_token_id=metering_token_id,
            metering_secret_enc=encrypt_secret(metering_secret),
        )
        audit_record(
            action="host.register", actor=actor, target=name,
            detail={"url": url, "token_id": token_id, "metering_token_id": metering_token_id,
                    "pinned": bool(fingerprint)},
        )  # fmt: skip
    if check:
        pbshost_check(host_id=host.pk, actor=actor, enable_new_datastores=True)
        host.refresh_from_db()
    return host


def pbshost_update(
    *,
    host_id: int,
    actor: Any = None,
    fingerprint: str | None = None,
    token_id: str | None = None,
    token_secret: str | None = None,
    metering_token_id: str | None = None,
    metering_secret: str | None = None,
    enabled: bool | None = None,
    public_address: str | None = None,
) -> PbsHost:
    """Change a host's pin, token, secrets or switches (after a certificate renewal, or to
    rotate the automation token). The caller runs a health check afterwards."""
    changed: list[str] = []
    with transaction.atomic():
        host = PbsHost.objects.select_for_update().get(pk=host_id)
        if fingerprint is not None:
            try:
                host.fingerprint = validation.validate_fingerprint(fingerprint) if fingerprint else ""
            except ValueError as exc:
                raise ValidationError({"fingerprint": [str(exc)]}) from exc
            host.fingerprint_ok = None
            changed.append("fingerprint")
        if token_id is not None:
            try:
                host.token_id = validation.validate_tokenid(token_id)
            except ValueError as exc:
                raise ValidationError({"token_id": [str(exc)]}) from exc
            changed.append("token_id")
        if token_secret:
            host.token_secret_enc = encrypt_secret(token_secret)
            changed.append("token_secret")
        if metering_token_id is not None:
            host.metering_token_id = metering_token_id
            changed.append("metering_token_id")
        if metering_secret is not None:
            host.metering_secret_enc = encrypt_secret(metering_secret)
            changed.append("metering_secret")
        if enabled is not None:
            host.enabled = enabled
            changed.append("enabled")
        if public_address is not None:
            host.public_address = public_address.strip()
            changed.append("public_address")
        host.save()
        # Field names only: the audit row never carries a secret.
        audit_record(action="host.update", actor=actor, target=host.name, detail={"changed": changed})
    return host


def _supports_regenerate(version: tuple[int, ...]) -> bool:
    return tuple(version[:3]) >= REGENERATE_SINCE


REQUIRED_PRIVILEGES = (
    ("/access/users", ("Permissions.Modify", "Sys.Audit")),
    ("/access/acl", ("Permissions.Modify",)),
)


REQUIRED_DATASTORE_PRIVILEGES = ("Datastore.Modify", "Datastore.Audit")


def pbshost_check(*, host_id: int, actor: Any = None, enable_new_datastores: bool = False) -> PbsHost:
    """Health check of one host.

    1. Version (reachable; the pinned fingerprint still matches, else the client refuses
       before sending anything); regenerate support from the version (>= 3.3.7).
    2. Datastores: list, status figures (total/used/avail) and GC figures; new ones are
       added (disabled for placement unless ``enable_new_datastores``).
    3. The automation token's own privileges on /access and each datastore, so missing
       grants show up before an onboarding fails on them.
    """
    host = PbsHost.objects.get(pk=host_id)
    now = timezone.now()
    updates: dict[str, Any] = {"last_check_at": now}
    warnings: list[str] = []
    try:
        with client_for_host(host) as client:
            version = client.version()
            updates.update(
                reachable=True,
                fingerprint_ok=True if host.fingerprint else None,
                pbs_version=f"{version.version}.{version.release}".strip("."),
                supports_regenerate=_supports_regenerate(version.version_tuple),
                last_error="",
            )
            stores = client.datastore_list()
            seen = set()
            known = {ds.name: ds for ds in Datastore.objects.filter(host=host)}
            for item in stores:
                seen.add(item.store)
                status = client.datastore_status(item.store)
                values: dict[str, Any] = {
                    "total_bytes": status.total,
                    "used_bytes": status.used,
                    "avail_bytes": status.avail,
                    "last_seen_at": now,
                }
                try:
                    gc = client.gc_status(item.store)
                except PbsHttpError:
                    gc = None
                if gc is not None:
                    values.update(gc_index_data_bytes=gc.index_data_bytes, gc_disk_bytes=gc.disk_bytes)
                if item.store in known:
                    Datastore.objects.filter(pk=known[item.store].pk).update(**values)
                else:
                    Datastore.objects.create(host=host, name=item.store, enabled=enable_new_datastores, **values)
                    audit_record(
                        action="host.datastore.discovered", actor=actor, target=f"{host.name}/{item.store}",
                        detail={"enabled": enable_new_datastores},
                    )  # fmt: skip
            unseen = sorted(set(known) - seen)
            # Capacity unknown = out of automatic placement until PBS lists it again.
            Datastore.objects.filter(host=host, name__in=unseen).update(avail_bytes=None)
            for name in unseen:
                warnings.append(
                    f"datastore '{name}' is not listed by PBS: it was removed, or the automation "
                    f"token cannot see it (Datastore.Audit on /datastore/{name})"
                )
            for path, needed in REQUIRED_PRIVILEGES:
                have = client.permissions_get(path=path).get(path, {})
                missing = [p for p in needed if p not in have]
                if missing:
                    warnings.append(
                        f"the automation token lacks {', '.join(missing)} on {path}: grant Admin on "
                        f"/access to {host.token_id} (and to its user)"
                    )
            for name in sorted(seen | {n for n, ds in known.items() if ds.enabled}):
                path = f"/datastore/{name}"
                have = client.permissions_get(path=path).get(path, {})
                missing = [p for p in REQUIRED_DATASTORE_PRIVILEGES if p not in have]
                if missing:
                    warnings.append(
                        f"the automation token lacks {', '.join(missing)} on {path}: grant "
                        f"DatastoreAdmin on {path} to {host.token_id} (and to its user)"
                    )
    except PbsError as exc:

        updates["last_error"] = f"{exc}\n{hint_for(exc, host=host)}".strip()
        if isinstance(exc, FingerprintMismatch):
            updates.update(reachable=True, fingerprint_ok=False)
        elif isinstance(exc, PbsConnectionError):
            updates["reachable"] = False
        else:
            updates["reachable"] = True
    updates["permission_warnings"] = warnings
    with transaction.atomic():
        PbsHost.objects.filter(pk=host.pk).update(**updates)
        result = "ok" if not updates.get("last_error") else "failed"
        audit_record(
            action="host.check", actor=actor, target=host.name, result=result,
            detail={"reachable": updates.get("reachable"), "fingerprint_ok": updates.get("fingerprint_ok"),
                    "version": updates.get("pbs_version", ""), "warnings": len(warnings)},
        )  # fmt: skip
    host.refresh_from_db()
    return host


def datastore_update(
    *, datastore_id: int, actor: Any = None, enabled: bool | None = None, placement_weight: int | None = None
) -> Datastore:
    with transaction.atomic():
        store = Datastore.objects.select_for_update(of=("self",)).select_related("host").get(pk=datastore_id)
        if enabled is not None:
            store.enabled = enabled
        if placement_weight is not None:
            if not 0 <= placement_weight <= 1000:
                raise ValidationError({"placement_weight": ["Use 0..1000 (0 = never place here)."]})
            store.placement_weight = placement_weight
        store.save(update_fields=["enabled", "placement_weight"])
        audit_record(
            action="host.datastore.update", actor=actor, target=str(store),
            detail={"enabled": store.enabled, "placement_weight": store.placement_weight},
        )  # fmt: skip
    return store
