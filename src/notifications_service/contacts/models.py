from __future__ import annotations

from django.db import models


class Contact(models.Model):
    """What this service knows about a user to reach them: a replica fed by `user.*` messages.

    `source_occurred_at` is the time of the message the row reflects, so an older message that
    arrives late (redelivery, another relay) never overwrites a newer one.
    """

    user_id = models.CharField(max_length=64, primary_key=True)
    name = models.CharField(max_length=200, blank=True, default="")
    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=32, blank=True, default="")
    source_occurred_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user_id} <{self.email}>"
