"""`Notification.source_event_id` becomes `source_message_id` and its constraint
`notification_once_per_message`: "event" means a ticketed event. Rows are kept (renames
only); the unique index is renamed, not rebuilt."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(
                    model_name="notification", name="notification_once_per_event"
                )
            ]
        ),
        migrations.RenameField(
            model_name="notification", old_name="source_event_id", new_name="source_message_id"
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddConstraint(
                    model_name="notification",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(("source_message_id__isnull", False)),
                        fields=("user_id", "source_message_id"),
                        name="notification_once_per_message",
                    ),
                )
            ],
            # A partial unique index (it has a condition), so an index to rename.
            database_operations=[
                migrations.RunSQL(
                    "ALTER INDEX notification_once_per_event"
                    " RENAME TO notification_once_per_message",
                    "ALTER INDEX notification_once_per_message"
                    " RENAME TO notification_once_per_event",
                )
            ],
        ),
    ]
