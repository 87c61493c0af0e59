"""ProcessedEvent becomes ProcessedMessage, and the message id and type columns of it and of
DeadLetter are `message_id` and `message_type`: "event" means a ticketed event. Rows are
kept (renames only); the unique constraint keeps its name and follows its column."""

from django.db import migrations, models

from servicekit.migration_ops import RenameDerivedNames


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0001_initial"),
    ]

    operations = [
        # The constraint names the renamed field: the state drops it and adds it back, the
        # database keeps it (PostgreSQL renames the column inside it).
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(
                    model_name="processedevent", name="inbox_processed_once"
                )
            ]
        ),
        migrations.RenameModel(old_name="ProcessedEvent", new_name="ProcessedMessage"),
        migrations.RenameField(
            model_name="processedmessage", old_name="event_id", new_name="message_id"
        ),
        migrations.RenameField(
            model_name="processedmessage", old_name="event_type", new_name="message_type"
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddConstraint(
                    model_name="processedmessage",
                    constraint=models.UniqueConstraint(
                        fields=("consumer", "message_id"), name="inbox_processed_once"
                    ),
                )
            ]
        ),
        RenameDerivedNames(
            table="inbox_processedmessage",
            old_table="inbox_processedevent",
            columns={"event_id": "message_id", "event_type": "message_type"},
        ),
        migrations.RenameField(model_name="deadletter", old_name="event_id", new_name="message_id"),
        migrations.RenameField(
            model_name="deadletter", old_name="event_type", new_name="message_type"
        ),
        RenameDerivedNames(
            table="inbox_deadletter",
            columns={"event_id": "message_id", "event_type": "message_type"},
        ),
    ]
