"""The outbox's rename migration on the real database (the users service's settings install
the outbox app): rows kept, and no name in the schema still says "event"."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from servicekit.migration_ops import derived_name

BEFORE = ("outbox", "0002_outboxevent_next_attempt_at_failed_at")
RENAMED = ("outbox", "0003_rename_outboxevent_outboxmessage")


def _migrate(target: tuple[str, str]) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([target])


def _names(table: str) -> set[str]:
    """Constraints, indexes and sequences of `table`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass"
            " UNION SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = %s::regclass"
            " UNION SELECT c.relname FROM pg_depend d JOIN pg_class c ON c.oid = d.objid"
            " WHERE d.refobjid = %s::regclass AND c.relkind = 'S'",
            [table, table, table],
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.fixture
def before_rename() -> Iterator[None]:
    _migrate(BEFORE)
    try:
        yield
    finally:
        _migrate(RENAMED)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("before_rename")
def test_the_outbox_rename_keeps_rows_and_renames_what_was_named_after_event() -> None:
    message_id = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO outbox_outboxevent (event_id, type, producer, version, occurred_at,"
            " data, attempts, last_error) VALUES (%s, 'user.updated', 'users', 1, now(), '{}',"
            " 0, '')",
            [message_id],
        )
    old_names = _names("outbox_outboxevent")
    assert {"outbox_outboxevent_pkey", "outbox_outboxevent_event_id_key"} <= old_names

    _migrate(RENAMED)
    with connection.cursor() as cursor:
        cursor.execute("SELECT message_id, type FROM outbox_messages")
        assert cursor.fetchall() == [(message_id, "user.updated")]
    new_names = _names("outbox_messages")
    assert {"outbox_messages_pkey", "outbox_messages_message_id_key"} <= new_names
    assert "outbox_messages_id_seq" in new_names
    assert [name for name in new_names if "event" in name] == []

    _migrate(BEFORE)  # and back: the old names, every one
    assert _names("outbox_outboxevent") == old_names


def test_only_names_derived_from_the_table_change() -> None:
    def rename(name: str) -> str | None:
        return derived_name(
            name,
            old_table="inbox_processedevent",
            new_table="inbox_processedmessage",
            columns={"event_id": "message_id", "event_type": "message_type"},
        )

    assert rename("inbox_processedevent_pkey") == "inbox_processedmessage_pkey"
    assert rename("inbox_processedevent_event_id_not_null") == (
        "inbox_processedmessage_message_id_not_null"
    )
    assert rename("inbox_processedevent_event_type_not_null") == (
        "inbox_processedmessage_message_type_not_null"
    )
    assert rename("inbox_processedevent_consumer_not_null") == (
        "inbox_processedmessage_consumer_not_null"
    )
    assert rename("inbox_processed_once") is None  # named by the model's Meta
    unchanged = derived_name(
        "inbox_deadletter_subject_not_null",
        old_table="inbox_deadletter",
        new_table="inbox_deadletter",
        columns={"event_id": "message_id"},
    )
    assert unchanged is None
