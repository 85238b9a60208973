"""``manage.py rotate_encryption_keys [--check] [--json]``: re-encrypt secrets at rest.

Every secret the portal keeps is a Fernet ciphertext in a model field whose name ends in
``_enc`` (PBS host tokens, tenant tokens until revealed, offsite remote secrets, webhook
secrets, TOTP seeds). ``PORTAL_ENCRYPTION_KEYS`` lists the keys: the first encrypts, all
decrypt. To rotate: prepend a new key, restart every process, run this command, then
remove the old key once ``--check`` passes (docs/operations.md).

rotate_encryption_keys           re-encrypt every value not yet under the first key
rotate_encryption_keys --check   change nothing; exit 1 while any value needs an older key

Exit 0 when every value is readable with the first key alone, 1 when some value is not
(with ``--check``: still under an older key; always: readable with no configured key at
all, listed by model, field and row id, never by content). ``--json`` for scripts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import models, transaction

from audit.services import audit_record
from core.commands import emit, fail
from core.crypto import SecretUnreadable, rotate_secret

BATCH_SIZE = 500


def encrypted_fields() -> list[tuple[type[models.Model], str]]:
    """Every (model, field name) holding a ciphertext: concrete text fields named ``*_enc``."""
    found = []
    for model in apps.get_models():
        for model_field in model._meta.concrete_fields:
            if model_field.name.endswith("_enc") and isinstance(model_field, models.TextField | models.CharField):
                found.append((model, model_field.name))
    return sorted(found, key=lambda pair: (pair[0]._meta.label, pair[1]))


@dataclass
class FieldResult:
    """What happened to one encrypted field across all its rows."""

    label: str
    current: int = 0  # already under the first key
    rotated: int = 0  # re-encrypted by this run (or, with --check, that would be)
    changed_meanwhile: int = 0  # rewritten by the portal during the run (so under the first key)
    unreadable: list[Any] = field(default_factory=list)  # row ids no configured key can read


def _rotate_field(model: type[models.Model], name: str, *, newest: Fernet, check: bool) -> FieldResult:
    """Re-encrypt one field's non-empty values, batch by batch.

    1. Read (pk, ciphertext) pairs in primary-key order.
    2. Skip values the first key already reads.
    3. Re-encrypt the others with the first key and write each back only if it is still the
       value read (a conditional update), so a secret the portal changed or wiped meanwhile
       is never overwritten with a stale one.
    """
    result = FieldResult(label=f"{model._meta.label}.{name}")
    rows = model._default_manager.exclude(**{name: ""}).order_by("pk").values_list("pk", name)
    last_pk: Any = None
    while True:
        batch = list((rows.filter(pk__gt=last_pk) if last_pk is not None else rows)[:BATCH_SIZE])
        if not batch:
            return result
        last_pk = batch[-1][0]
        with transaction.atomic():
            for pk, ciphertext in batch:
                try:
                    newest.decrypt(ciphertext.encode())
                    result.current += 1
                    continue
                except InvalidToken:
                    pass
                try:
                    rotated = rotate_secret(ciphertext)
                except (SecretUnreadable, InvalidToken):
                    result.unreadable.append(pk)
                    continue
                # With --check nothing is written; the value only counts as one to rotate.
                if check or model._default_manager.filter(pk=pk, **{name: ciphertext}).update(**{name: rotated}):
                    result.rotated += 1
                else:
                    result.changed_meanwhile += 1


class Command(BaseCommand):
    help = "Re-encrypt every secret kept at rest with the first key of PORTAL_ENCRYPTION_KEYS."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Machine-readable output on stdout.")
        parser.add_argument(
            "--check", action="store_true", help="Change nothing; fail while any value needs an older key."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        keys = list(settings.PORTAL_ENCRYPTION_KEYS)
        newest = Fernet(keys[0].encode())
        check = options["check"]
        results = [_rotate_field(model, name, newest=newest, check=check) for model, name in encrypted_fields()]
        rotated = sum(r.rotated for r in results)
        unreadable = sum(len(r.unreadable) for r in results)
        if not check and rotated:
            # Counts only: the audit row never carries a secret or a key.
            audit_record(
                action="secrets.rotated", target="PORTAL_ENCRYPTION_KEYS",
                detail={"keys": len(keys), "rotated": rotated, "unreadable": unreadable,
                        "fields": {r.label: r.rotated for r in results if r.rotated}},
            )  # fmt: skip
        data = {
            "check": check,
            "keys": len(keys),
            "fields": [
                {
                    "field": r.label,
                    "current": r.current,
                    "rotated": r.rotated,
                    "changed_meanwhile": r.changed_meanwhile,
                    "unreadable_ids": r.unreadable,
                }
                for r in results
            ],
        }
        verb = "need rotation" if check else "re-encrypted"
        lines = [
            f"{r.label:<46} {r.current:>6} current, {r.rotated:>6} {verb}"
            + (f", {len(r.unreadable)} UNREADABLE (ids {', '.join(map(str, r.unreadable))})" if r.unreadable else "")
            for r in results
        ]
        emit(self, options, data, "\n".join(lines))
        if unreadable:
            raise fail(
                f"{unreadable} value(s) cannot be decrypted with any key in PORTAL_ENCRYPTION_KEYS: they were "
                "encrypted with a key that has been removed. Put that key back (anywhere in the list) and run "
                "again, or replace those secrets (set-token, token rotation, new TOTP enrolment)."
            )
        if check and rotated:
            raise fail(f"{rotated} value(s) still need an older key: run rotate_encryption_keys without --check")
