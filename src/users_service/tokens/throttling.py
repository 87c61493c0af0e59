"""Rate limits of the users service (servicekit.ratelimits counts them).

Login counts against the client address and against the account, known or not (so the
limit says nothing about which emails exist). The account key is the email as the
database compares it (`email_canonical`), the same form the lookup and the unique
constraint use.
"""

from __future__ import annotations

from servicekit.ratelimits import RateLimited, rate_limit
from users_service.accounts.models import email_canonical

__all__ = ["RateLimited", "login_rate_limit", "rate_limit"]


def login_rate_limit(*, email: str, address: str) -> None:
    """Before a password is checked: the address first, so attempts it is refused do not
    use up the account's budget."""
    rate_limit(action="login", scope="address", key=address)
    rate_limit(action="login", scope="account", key=email_canonical(email))
