"""Rate limits of the users service, shared by every worker process.

Each limit is a setting `RATE_LIMIT_<ACTION>_PER_<SCOPE>` ("40/h", or None when "off"),
counted by django-ratelimit in fixed windows of its period: a window ends by itself, so a
limited address or account recovers without anyone's help. The counters live in the
"shared" cache (servicekit.cache: the service's PostgreSQL, atomic increments), and an
attempt is counted *before* the work it limits, so a concurrent burst is judged as a burst:
at most the limit of them get through to the password check, however many arrive at once.

Login counts against the client address and against the account, known or not (so the
limit says nothing about which emails exist). The account key is the email as the
database compares it (`email_canonical`), the same form the lookup and the unique
constraint use.
"""

from __future__ import annotations

from django.conf import settings
from django_ratelimit.core import get_usage
from rest_framework import exceptions

from users_service.accounts.models import email_canonical


class RateLimited(exceptions.Throttled):
    default_detail = "Too many attempts."
    default_code = "rate-limited"


def rate_limit(*, action: str, scope: str, key: str) -> None:
    """Count one attempt at `action` by `key` against RATE_LIMIT_<ACTION>_PER_<SCOPE>;
    past the limit, raise 429 with the seconds until the window ends (Retry-After)."""
    name = f"RATE_LIMIT_{action}_PER_{scope}".upper()
    rate = getattr(settings, name)
    if rate is None:  # "off"
        return
    # The request is not needed: the key is given, and every method counts.
    usage = get_usage(None, group=name, key=lambda _group, _request: key, rate=rate, increment=True)
    if usage is not None and usage["should_limit"]:
        # The window's last second still belongs to it (django-ratelimit compares whole
        # seconds), hence the + 1: waiting Retry-After seconds is always enough.
        seconds = max(0, int(usage["time_left"])) + 1
        raise RateLimited(wait=seconds, detail=f"Too many attempts; retry in {seconds} s.")


def login_rate_limit(*, email: str, address: str) -> None:
    """Before a password is checked: the address first, so attempts it is refused do not
    use up the account's budget."""
    rate_limit(action="login", scope="address", key=address)
    rate_limit(action="login", scope="account", key=email_canonical(email))
