"""Token issuing: login, refresh rotation with reuse detection, logout, service tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from servicekit.problems import Problem
from users_service.accounts.models import User
from users_service.tokens.keys import signing_key_active, signing_key_private
from users_service.tokens.models import RefreshToken
from users_service.tokens.throttling import (
    login_failure_record,
    login_success_record,
    login_throttle_check,
    throttle_keys,
)


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


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    expires_in: int
    user: User


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def access_token_issue(*, subject: str, role: str, ttl_seconds: int | None = None) -> str:
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


def _refresh_token_create(*, user: User, family: uuid.UUID) -> str:
    raw = secrets.token_urlsafe(48)
    RefreshToken.objects.create(
        user=user,
        family=family,
        token_hash=_hash(raw),
        expires_at=timezone.now() + timedelta(seconds=settings.JWT_REFRESH_TOKEN_SECONDS),
    )
    return raw


def _pair(user: User, refresh: str) -> TokenPair:
    return TokenPair(
        access=access_token_issue(subject=str(user.id), role=user.role),
        refresh=refresh,
        expires_in=settings.JWT_ACCESS_TOKEN_SECONDS,
        user=user,
    )


def login(*, email: str, password: str, address: str) -> TokenPair:
    """Check the password and start a refresh-token family.

    The answer is the same whether the email is unknown, the account inactive or the
    password wrong, and takes as long: an unknown email still pays for one Argon2 hash.
    """
    keys = throttle_keys(email=email, address=address)
    login_throttle_check(keys=keys)
    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is None:
        make_password(password)  # same cost as a real check
        ok = False
    else:
        ok = user.check_password(password) and user.is_active
    if not ok or user is None:
        login_failure_record(keys=keys)
        raise InvalidCredentials
    login_success_record(keys=keys)
    with transaction.atomic():
        refresh = _refresh_token_create(user=user, family=uuid.uuid4())
    return _pair(user, refresh)


def refresh_rotate(*, refresh: str) -> TokenPair:
    """Exchange a refresh token for a new pair. A token used twice revokes its family."""
    now = timezone.now()
    reused_family: uuid.UUID | None = None
    with transaction.atomic():
        token = (
            RefreshToken.objects.select_for_update()
            .select_related("user")
            .filter(token_hash=_hash(refresh))
            .first()
        )
        if token is None or token.revoked_at is not None or token.expires_at <= now:
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
            new_refresh = _refresh_token_create(user=token.user, family=token.family)
            user = token.user
    if reused_family is not None:  # raised after commit, so the revocation sticks
        raise InvalidRefreshToken("This refresh token was already used; the session is revoked.")
    return _pair(user, new_refresh)


def refresh_family_revoke(*, refresh: str) -> None:
    """Logout: the token's whole family stops working. Unknown tokens are ignored."""
    token = RefreshToken.objects.filter(token_hash=_hash(refresh)).only("family").first()
    if token is not None:
        RefreshToken.objects.filter(family=token.family, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
