from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built without blocking writes to a live bookings table.
    atomic = False

    dependencies = [
        ("bookings", "0001_initial"),
        ("events", "0001_initial"),
        ("resources", "0001_initial"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="booking",
            index=models.Index(
                condition=models.Q(("status", "pending")),
                fields=["event", "user_id"],
                name="booking_event_user_pending_idx",
            ),
        ),
    ]
