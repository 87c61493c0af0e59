from django.db import migrations, models

# Families that exist already started no later than their oldest token.
BACKFILL = """
UPDATE tokens_refreshtoken AS t
SET family_started_at = f.started_at
FROM (
    SELECT family, MIN(created_at) AS started_at FROM tokens_refreshtoken GROUP BY family
) AS f
WHERE t.family = f.family
"""


class Migration(migrations.Migration):
    dependencies = [
        ("tokens", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="refreshtoken",
            name="family_started_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="refreshtoken",
            name="family_started_at",
            field=models.DateTimeField(),
        ),
    ]
