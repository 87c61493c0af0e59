from __future__ import annotations

from django.db import models


class CacheEntry(models.Model):
    """A rate-limit counter (servicekit.ratelimits): per key, the attempts of its latest fixed
    window (`window_index`, counted from the epoch in periods) and of the window before it,
    and when the row stops mattering (the end of the window after its latest). A model, so
    that migrate creates the table wherever the service runs and test flushes empty it."""

    cache_key = models.CharField(max_length=255, primary_key=True)
    window_index = models.BigIntegerField()
    current_count = models.BigIntegerField()
    previous_count = models.BigIntegerField()
    expires = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "servicekit_cache"

    def __str__(self) -> str:
        return self.cache_key
