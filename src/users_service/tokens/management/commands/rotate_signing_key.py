from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from users_service.tokens.keys import published_keys_cutoff, signing_key_rotate


class Command(BaseCommand):
    help = "Start signing with a new key; the old key stays in the JWKS until its tokens expire."

    def handle(self, *args: Any, **options: Any) -> None:
        key = signing_key_rotate()
        keep = int(published_keys_cutoff().total_seconds())
        self.stdout.write(f"new signing key {key.kid}; previous keys stay published for {keep} s")
