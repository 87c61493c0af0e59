"""One rate-limit counter row per key, carrying its previous window's count, instead of one
row per key and window.

The count then reaches the table only through its primary key (the arbiter of its ON
CONFLICT), so the plan PostgreSQL keeps for the prepared statement is right whatever the
table held when it was made (servicekit.ratelimits). The counters restart from zero, as
after a crash of this unlogged table: at most one more window of attempts gets through.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("servicekit", "0002_cache_unlogged")]

    operations = [
        migrations.RunSQL(sql="TRUNCATE servicekit_cache", reverse_sql=migrations.RunSQL.noop),
        migrations.RemoveField(model_name="cacheentry", name="value"),
        migrations.AddField(
            model_name="cacheentry",
            name="window_index",
            field=models.BigIntegerField(default=0),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="cacheentry",
            name="current_count",
            field=models.BigIntegerField(default=0),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="cacheentry",
            name="previous_count",
            field=models.BigIntegerField(default=0),
            preserve_default=False,
        ),
    ]
