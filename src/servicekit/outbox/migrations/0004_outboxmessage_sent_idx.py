from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built without blocking writes to a live outbox (one that was never pruned may be big).
    atomic = False

    dependencies = [
        ("outbox", "0003_rename_outboxevent_outboxmessage"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="outboxmessage",
            index=models.Index(
                condition=models.Q(("sent_at__isnull", False)),
                fields=["sent_at"],
                name="outbox_sent_idx",
            ),
        ),
    ]
