"""Token issuing: login, refresh rotation with reuse detection, logout, service tokens.

A refresh family is a session: one login and every token rotated from it. Its id travels in
the access tokens it issues as the `sid` claim, so a request can name its own session.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from servicekit.auth import Principal
from servicekit.errors import Problem
from users_service.accounts.models import User
from users_service.tokens.keys import signing_key_active, signing_key_private
from users_service.tokens.models import RefreshToken
from users_service.tokens.throttling import login_rate_limit


class InvalidCredentials(Problem):
    # A Problem, not DRF's AuthenticationFailed: these views take no Authorization header,
    # and DRF would turn AuthenticationFailed into 403 there.
    status_code = 401
    default_detail = "Invalid email or password."
    default_code = "invalid-credentials"


class InvalidRefreshToken(Problem):
    status_code = 401
    default_detail = "The refresh token is invalid, expired or revoked."
    default_code = "invalid-refresh-token"


class SessionExpired(Problem):
    status_code = 401
    default_detail = "The session has reached its maximum age; log in again."
    default_code = "session-expired"


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    expires_in: int
    user: User


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def access_token_issue(
    *, subject: str, role: str, ttl_seconds: int | None = None, session: uuid.UUID | None = None
) -> str:
    ttl = ttl_seconds or settings.JWT_ACCESS_TOKEN_SECONDS
    key = signing_key_active()
    now = timezone.now()
    claims: dict[str, Any] = {
        "sub": subject,
        "role": role,
        "iss": settings.JWT_ISSUER,
        "aud": settings.JWT_AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    if session is not None:
        claims["sid"] = str(session)
    return jwt.encode(
        claims, signing_key_private(key), algorithm=key.algorithm, headers={"kid": key.kid}
    )


def service_token_issue(*, name: str) -> str:
    """A token for another service (role `service`, subject `service:<name>`)."""
    return access_token_issue(
        subject=f"service:{name}",
        role="service",
        ttl_seconds=settings.JWT_SERVICE_TOKEN_SECONDS,
    )


def session_id(principal: Principal) -> uuid.UUID | None:
    """The refresh family the caller's access token was issued from, if it names one."""
    try:
        return uuid.UUID(str(principal.claims["sid"]))
    except (KeyError, ValueError):
        return None


def _session_ends_at(family_started_at: datetime) -> datetime:
    return family_started_at + timedelta(seconds=settings.SESSION_MAX_AGE_SECONDS)


def _refresh_token_create(*, user: User, family: uuid.UUID, family_started_at: datetime) -> str:
    raw = secrets.token_urlsafe(48)
    RefreshToken.objects.create(
        user=user,
        family=family,
        family_started_at=family_started_at,
        token_hash=_hash(raw),
        expires_at=min(
            timezone.now() + timedelta(seconds=settings.JWT_REFRESH_TOKEN_SECONDS),
            _session_ends_at(family_started_at),
        ),
    )
    return raw


def _pair(user: User, refresh: str, family: uuid.UUID) -> TokenPair:
    return TokenPair(
        access=access_token_issue(subject=str(user.id), role=user.role, session=family),
        refresh=refresh,
        expires_in=settings.JWT_ACCESS_TOKEN_SECONDS,
        user=user,
    )


def login(*, email: str, password: str, address: str) -> TokenPair:
    """Check the password and start a refresh-token family.

    The answer is the same whether the email is unknown, the account inactive or the
    password wrong, and takes as long: an unknown email still pays for one Argon2 hash.
    Each attempt first counts against the address's and the account's limits (429 past
    them), before any password is checked.
    """
    login_rate_limit(email=email, address=address)
    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is None:
        make_password(password)  # same cost as a real check
        ok = False
    else:
        ok = user.check_password(password) and user.is_active
    if not ok or user is None:
        raise InvalidCredentials
    family = uuid.uuid4()
    with transaction.atomic():
        refresh = _refresh_token_create(user=user, family=family, family_started_at=timezone.now())
    return _pair(user, refresh, family)


def refresh_rotate(*, refresh: str) -> TokenPair:
    """Exchange a refresh token for a new pair. A token used twice revokes its family; a
    session past its maximum age is refused."""
    now = timezone.now()
    reused_family: uuid.UUID | None = None
    with transaction.atomic():
        # The user row first, then the token, the order `refresh_families_revoke` takes them
        # in: a revocation waits for this rotation and then sees the successor it creates.
        User.objects.select_for_update(of=("self",)).filter(
            refresh_tokens__token_hash=_hash(refresh)
        ).first()
        token = (
            RefreshToken.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(token_hash=_hash(refresh))
            .first()
        )
        if token is None or token.revoked_at is not None:
            raise InvalidRefreshToken
        if _session_ends_at(token.family_started_at) <= now:
            raise SessionExpired
        if token.expires_at <= now:
            raise InvalidRefreshToken
        if token.used_at is not None:
            reused_family = token.family
            RefreshToken.objects.filter(family=token.family, revoked_at__isnull=True).update(
                revoked_at=now
            )
        elif not token.user.is_active:
            raise InvalidRefreshToken
        else:
            token.used_at = now
            token.save(update_fields=["used_at"])
            new_refresh = _refresh_token_create(
                user=token.user, family=token.family, family_started_at=token.family_started_at
            )
            user = token.user
    if reused_family is not None:  # raised after commit, so the revocation sticks
        raise InvalidRefreshToken("This refresh token was already used; the session is revoked.")
    return _pair(user, new_refresh, token.family)


def refresh_family_revoke(*, refresh: str) -> None:
    """Logout: the token's whole family stops working. Unknown tokens are ignored."""
    token = RefreshToken.objects.filter(token_hash=_hash(refresh)).only("family", "user").first()
    if token is None:
        return
    with transaction.atomic():
        # Waits for a rotation in flight (it holds this row), so its successor is revoked too.
        User.objects.select_for_update().filter(pk=token.user_id).first()
        RefreshToken.objects.filter(family=token.family, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )


def refresh_families_revoke(*, user_id: uuid.UUID | str, keep: uuid.UUID | None = None) -> int:
    """End the user's sessions: every refresh family but `keep`. Returns the tokens revoked.

    Used by "log out everywhere" and by password and email changes.
    """
    with transaction.atomic():
        # Waits for a rotation in flight (it holds this row), so its successor is revoked too.
        User.objects.select_for_update().filter(pk=user_id).first()
        tokens = RefreshToken.objects.filter(user_id=user_id, revoked_at__isnull=True)
        if keep is not None:
            tokens = tokens.exclude(family=keep)
        return tokens.update(revoked_at=timezone.now())
