"""The rate-limit counters become an UNLOGGED table, without the pattern index Django gives a
character primary key.

A counter is written by every rate-limited request (a flash sale's booking batches count
each buyer), and as a logged table each count wrote WAL for the row and its three indexes
and waited for its own commit's flush. Unlogged, a count writes no WAL and its commit does
not wait on the disk; PostgreSQL empties the table after a crash, and a standby does not
have it, so after a crash or a failover every limit starts again from zero (as with a cache
server that keeps nothing on disk), which lets at most one more window of attempts through.
Keys are only ever compared whole, so `varchar_pattern_ops` (for LIKE) served nothing.
"""

from django.db import migrations

LIKE_INDEX = "servicekit_cache_cache_key_443d1e2c_like"


class Migration(migrations.Migration):
    dependencies = [("servicekit", "0001_initial")]

    operations = [
        migrations.RunSQL(
            sql=[
                f"DROP INDEX IF EXISTS {LIKE_INDEX}",
                "ALTER TABLE servicekit_cache SET UNLOGGED",
            ],
            reverse_sql=[
                "ALTER TABLE servicekit_cache SET LOGGED",
                f"CREATE INDEX IF NOT EXISTS {LIKE_INDEX} ON servicekit_cache "
                "(cache_key varchar_pattern_ops)",
            ],
        ),
    ]
