"""Create an MSP-side account (admin, operator, accounting) from the command line.

    manage.py portal_user_create --username ann --email ann@msp.example --role admin
    printf '%s' "$PASSWORD" | manage.py portal_user_create --username ann --role admin --password-stdin

Without --password-stdin a random password is generated and printed once. Client users are
not created here: staff invite them to their tenant (one-time link by e-mail).
"""

from __future__ import annotations

import secrets
import sys
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import Role, User
from audit.services import audit_record

STAFF_SIDE = (Role.ADMIN, Role.OPERATOR, Role.ACCOUNTING)


class Command(BaseCommand):
    help = "Create an admin, operator or accounting account."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", required=True)
        parser.add_argument("--email", default="")
        parser.add_argument("--role", required=True, choices=[str(r) for r in STAFF_SIDE])
        parser.add_argument("--password-stdin", action="store_true", help="Read the password from stdin.")

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise CommandError(f"user {username!r} exists already")
        generated = not options["password_stdin"]
        password = secrets.token_urlsafe(18) if generated else sys.stdin.read().rstrip("\n")
        candidate = User(username=username, email=options["email"], role=options["role"])
        try:
            validate_password(password, user=candidate)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        with transaction.atomic():
            user = User.objects.create_user(
                username=username, email=options["email"], password=password, role=options["role"]
            )
            audit_record(action="user.created", target=username, detail={"role": user.role, "via": "cli"})
        self.stdout.write(f"created {user.get_role_display()} {username}")
        if generated:
            self.stdout.write(f"password (shown once): {password}")
