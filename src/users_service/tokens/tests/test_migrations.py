from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from users_service.accounts.models import User
from users_service.tokens.models import RefreshToken

BEFORE = [("tokens", "0001_initial")]
AFTER = [("tokens", "0002_refreshtoken_family_started_at")]


def migrate(targets: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


@pytest.mark.django_db(transaction=True)
def test_existing_families_start_at_their_oldest_token(customer: User) -> None:
    migrate(BEFORE)
    now = timezone.now()
    family, other_family = uuid.uuid4(), uuid.uuid4()
    rows = [
        (family, now - timedelta(days=20)),
        (family, now - timedelta(days=3)),
        (other_family, now - timedelta(days=1)),
    ]
    with connection.cursor() as cursor:
        for family_id, created_at in rows:
            cursor.execute(
                "INSERT INTO tokens_refreshtoken (id, family, user_id, token_hash, created_at,"
                " expires_at) VALUES (%s, %s, %s, %s, %s, %s)",
                [uuid.uuid4(), family_id, customer.pk, uuid.uuid4().hex, created_at, now],
            )
    migrate(AFTER)
    started = dict(RefreshToken.objects.values_list("family", "family_started_at").distinct())
    assert started == {family: now - timedelta(days=20), other_family: now - timedelta(days=1)}
