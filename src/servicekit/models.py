from __future__ import annotations

from django.db import models


class CacheEntry(models.Model):
    """A rate-limit counter (servicekit.ratelimits): a key, its count, when its window ends.
    A model, so that migrate creates the table wherever the service runs and test flushes
    empty it."""

    cache_key = models.CharField(max_length=255, primary_key=True)
    value = models.TextField()
    expires = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "servicekit_cache"

    def __str__(self) -> str:
        return self.cache_key
