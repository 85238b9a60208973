"""Clear a user's second factor (lost phone); they enrol again at their next sign-in.

    manage.py portal_user_totp_reset --username ann
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from accounts.services import totp_reset


class Command(BaseCommand):
    help = "Reset a user's TOTP second factor."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user {options['username']!r}")
        totp_reset(user=user, actor=None)
        self.stdout.write(f"second factor of {user.get_username()} reset")
