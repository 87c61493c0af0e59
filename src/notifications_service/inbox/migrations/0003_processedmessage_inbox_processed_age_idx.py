from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built without blocking writes to a live table (one that was never pruned may be big).
    atomic = False

    dependencies = [
        ("inbox", "0002_processedmessage_message_id"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="processedmessage",
            index=models.Index(fields=["consumer", "processed_at"], name="inbox_processed_age_idx"),
        ),
    ]
