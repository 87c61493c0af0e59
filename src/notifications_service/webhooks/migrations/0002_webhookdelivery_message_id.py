"""`WebhookDelivery.event_id` and `event_type` become `message_id` and `message_type`, and
its constraint `webhook_once_per_message`: "event" means a ticketed event. Rows are kept
(renames only); the unique constraint is renamed, not rebuilt."""

from django.db import migrations, models

from servicekit.migration_ops import RenameDerivedNames


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(
                    model_name="webhookdelivery", name="webhook_once_per_event"
                )
            ]
        ),
        migrations.RenameField(
            model_name="webhookdelivery", old_name="event_id", new_name="message_id"
        ),
        migrations.RenameField(
            model_name="webhookdelivery", old_name="event_type", new_name="message_type"
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddConstraint(
                    model_name="webhookdelivery",
                    constraint=models.UniqueConstraint(
                        fields=("endpoint", "message_id"), name="webhook_once_per_message"
                    ),
                )
            ],
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE webhooks_webhookdelivery"
                    " RENAME CONSTRAINT webhook_once_per_event TO webhook_once_per_message",
                    "ALTER TABLE webhooks_webhookdelivery"
                    " RENAME CONSTRAINT webhook_once_per_message TO webhook_once_per_event",
                )
            ],
        ),
        RenameDerivedNames(
            table="webhooks_webhookdelivery",
            columns={"event_id": "message_id", "event_type": "message_type"},
        ),
    ]
