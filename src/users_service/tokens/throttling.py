"""Login throttling shared by every worker process (rows in the users database).

Two keys per attempt: the account (`account:<email>`, whether or not it exists, so the
throttle reveals nothing) and the client address (`address:<ip>`). After
LOGIN_FREE_FAILURES consecutive failures each further failure doubles the wait before the
next attempt (1 s, 2 s, 4 s, ... up to LOGIN_MAX_DELAY_SECONDS); an account also takes at
most LOGIN_MAX_FAILURES_PER_HOUR failures per hour.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework import exceptions

from users_service.tokens.models import LoginThrottle

WINDOW = timedelta(hours=1)


class LoginThrottled(exceptions.Throttled):
    default_detail = "Too many failed logins."
    default_code = "login-throttled"


def throttle_keys(*, email: str, address: str) -> list[str]:
    return [f"account:{email.strip().lower()}"[:300], f"address:{address}"[:300]]


def _retry_after(row: LoginThrottle, now: datetime) -> float:
    waits = [0.0]
    if row.locked_until and row.locked_until > now:
        waits.append((row.locked_until - now).total_seconds())
    if (
        row.key.startswith("account:")
        and row.window_started_at > now - WINDOW
        and row.window_failures >= settings.LOGIN_MAX_FAILURES_PER_HOUR
    ):
        waits.append((row.window_started_at + WINDOW - now).total_seconds())
    return max(waits)


def login_throttle_check(*, keys: list[str]) -> None:
    """Raise 429 (with Retry-After) while any key must wait."""
    now = timezone.now()
    wait = max(
        (_retry_after(row, now) for row in LoginThrottle.objects.filter(key__in=keys)),
        default=0.0,
    )
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise LoginThrottled(wait=seconds, detail=f"Too many failed logins; retry in {seconds} s.")


def login_failure_record(*, keys: list[str]) -> None:
    now = timezone.now()
    with transaction.atomic():
        for key in sorted(keys):  # a fixed lock order: concurrent failures cannot deadlock
            row, _ = LoginThrottle.objects.select_for_update().get_or_create(
                key=key, defaults={"window_started_at": now}
            )
            if row.window_started_at <= now - WINDOW:
                row.window_started_at = now
                row.window_failures = 0
            row.window_failures += 1
            row.consecutive_failures += 1
            over = row.consecutive_failures - settings.LOGIN_FREE_FAILURES
            if over > 0:
                delay = min(2 ** min(over - 1, 30), settings.LOGIN_MAX_DELAY_SECONDS)
                row.locked_until = now + timedelta(seconds=delay)
            row.save()


def login_success_record(*, keys: list[str]) -> None:
    """A correct password ends the account's streak (not the address's: one valid account
    must not reset the counter of an address guessing at others)."""
    LoginThrottle.objects.filter(key__in=[k for k in keys if k.startswith("account:")]).update(
        consecutive_failures=0, locked_until=None
    )
