from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built without blocking writes to a live table (one that was never pruned may be big).
    atomic = False

    dependencies = [
        ("notifications", "0002_notification_source_message_id"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="emaildelivery",
            index=models.Index(
                condition=models.Q(("status", "sent")),
                fields=["sent_at"],
                name="email_delivery_sent_idx",
            ),
        ),
    ]
