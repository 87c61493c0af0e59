"""Demo accounts for the development stack. Safe to run on every start."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from users_service.accounts.demo import DEMO_ACCOUNTS
from users_service.accounts.models import Role, User
from users_service.accounts.services import user_create_admin, user_register


class Command(BaseCommand):
    help = "Create the demo admin, organizer and customer; print them as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--context", default="{}", help="what earlier seeds made (unused)")

    def handle(self, *args: Any, **options: Any) -> None:
        accounts = []
        for role_name, name, email, password in DEMO_ACCOUNTS:
            role = Role(role_name)
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                if role == Role.ADMIN:
                    user = user_create_admin(name=name, email=email, password=password).user
                else:
                    user = user_register(name=name, email=email, password=password, role=role)
            accounts.append(
                {"role": role.value, "id": str(user.id), "email": email, "password": password}
            )
        self.stdout.write(json.dumps({"accounts": accounts}))
