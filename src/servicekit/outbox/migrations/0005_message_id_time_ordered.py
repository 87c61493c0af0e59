import servicekit.outbox.models
from django.db import migrations, models


class Migration(migrations.Migration):
    # New messages get time-ordered ids (UUIDv7); the stored ones keep theirs. Only the
    # default changes: nothing is written to the table.

    dependencies = [
        ("outbox", "0004_outboxmessage_sent_idx"),
    ]

    operations = [
        migrations.AlterField(
            model_name="outboxmessage",
            name="message_id",
            field=models.UUIDField(
                default=servicekit.outbox.models.new_message_id, editable=False, unique=True
            ),
        ),
    ]
