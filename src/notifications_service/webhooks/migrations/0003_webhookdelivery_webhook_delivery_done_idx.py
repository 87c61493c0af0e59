from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built without blocking writes to a live table (one that was never pruned may be big).
    atomic = False

    dependencies = [
        ("webhooks", "0002_webhookdelivery_message_id"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="webhookdelivery",
            index=models.Index(
                condition=models.Q(("status", "succeeded")),
                fields=["delivered_at"],
                name="webhook_delivery_done_idx",
            ),
        ),
    ]
