"""The events listing's index no longer names `available_tickets`, and event rows leave room
on their pages: together they let the inventory counter's updates be HOT (the row's new
version on the same page, no new index entries), which a sale makes thousands of."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0002_event_starts_at"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="event",
            name="event_listing_idx",
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                condition=models.Q(("status", "active")),
                fields=["starts_at", "id"],
                name="event_listing_idx",
            ),
        ),
        migrations.RunSQL(
            "ALTER TABLE events SET (fillfactor = 70)",
            reverse_sql="ALTER TABLE events RESET (fillfactor)",
        ),
    ]
