"""OutboxEvent becomes OutboxMessage in the table `outbox_messages`, its `event_id` column
`message_id`: "event" means a ticketed event. Rows are kept (renames only)."""

from django.db import migrations

from servicekit.migration_ops import RenameDerivedNames


class Migration(migrations.Migration):
    dependencies = [
        ("outbox", "0002_outboxevent_next_attempt_at_failed_at"),
    ]

    operations = [
        migrations.RenameModel(old_name="OutboxEvent", new_name="OutboxMessage"),
        migrations.AlterModelTable(name="outboxmessage", table="outbox_messages"),
        migrations.RenameField(
            model_name="outboxmessage", old_name="event_id", new_name="message_id"
        ),
        RenameDerivedNames(
            table="outbox_messages",
            old_table="outbox_outboxevent",
            columns={"event_id": "message_id"},
        ),
    ]
