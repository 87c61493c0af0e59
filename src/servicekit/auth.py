"""Verification of the users service's access tokens, locally, against its cached JWKS.

A booking never waits on the users service: the key set is fetched once, cached, and
refetched only when a token names a `kid` the cache does not know (a rotated key), at most
once per `JWT_JWKS_MIN_REFETCH_SECONDS`, outside any lock (see `JWKSCache`). Each key's
algorithm is pinned by the key set itself, so `alg: none`, HMAC signed with the public key,
or any algorithm the key was not published for is refused before a signature is looked at.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from django.conf import settings
from django.utils.module_loading import import_string
from rest_framework import authentication, exceptions
from rest_framework.request import Request

logger = logging.getLogger(__name__)

ROLES = frozenset({"customer", "organizer", "admin", "service"})
ALLOWED_ALGORITHMS = frozenset({"EdDSA", "RS256", "ES256"})
REQUIRED_CLAIMS = ["sub", "role", "iss", "aud", "exp", "iat", "jti"]

JWKSFetcher = Callable[[], dict[str, Any]]


class InvalidTokenError(Exception):
    """The token is not one this service accepts; the message says why (for logs only)."""


@dataclass(frozen=True)
class Principal:
    """The caller, as the access token describes it. Not a database user."""

    id: str
    role: str
    token_id: str
    claims: dict[str, Any] = field(repr=False, compare=False)

    is_authenticated = True
    is_anonymous = False

    @property
    def pk(self) -> str:
        return self.id

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_organizer(self) -> bool:
        return self.role == "organizer"

    @property
    def is_service(self) -> bool:
        return self.role == "service"


def fetch_jwks_over_http(url: str, timeout: float = 3.0) -> dict[str, Any]:
    if not url.startswith(("http://", "https://")):
        raise InvalidTokenError(f"JWKS URL must be http(s): {url}")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        document: dict[str, Any] = json.loads(response.read())
    return document


@dataclass
class _CachedKey:
    key: Any
    algorithm: str


class JWKSCache:
    """Thread-safe cache of verification keys by `kid`.

    Fetching is rate-limited, because a token with a made-up `kid` costs its sender nothing:
    after a successful fetch the next one waits `min_refetch_seconds`; after a failed one it
    waits `backoff_seconds`, doubling with each failure up to `min_refetch_seconds`. At most
    one fetch is in flight per process, and no lock is held while it runs. A request whose
    `kid` is unknown while another request is fetching, or before the next fetch is due, is
    refused at once rather than made to wait; a cached key keeps serving, stale or not, when
    a refresh fails or is not due, so a users-service outage logs nobody out. Only while no
    key set has been loaded yet (a process that just started) do requests wait for the
    fetch in flight, since nothing can be verified without it.
    """

    def __init__(
        self,
        fetch: JWKSFetcher,
        *,
        max_age_seconds: float = 300.0,
        min_refetch_seconds: float = 30.0,
        backoff_seconds: float = 1.0,
        first_fetch_wait_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._max_age = max_age_seconds
        self._min_refetch = min_refetch_seconds
        self._backoff = backoff_seconds
        self._first_fetch_wait = first_fetch_wait_seconds
        self._clock = clock
        self._keys: dict[str, _CachedKey] = {}
        self._fetched_at: float | None = None
        self._next_fetch_at = float("-inf")
        self._failures = 0
        self._in_flight: threading.Event | None = None
        self._lock = threading.Lock()

    def get(self, kid: str) -> _CachedKey:
        mine: threading.Event | None = None  # set when this call is the one that fetches
        with self._lock:
            cached = self._keys.get(kid)
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at > self._max_age
            in_flight = self._in_flight
            if (cached is None or stale) and in_flight is None and now >= self._next_fetch_at:
                self._in_flight = mine = threading.Event()
            loaded = self._fetched_at is not None
        if mine is not None:
            if not self._refresh(mine) and cached is not None:
                return cached  # the users service is down: the key we know still serves
        elif cached is not None:
            return cached  # even a stale one, while the next fetch is not due
        elif in_flight is not None and not loaded:
            in_flight.wait(self._first_fetch_wait)
        with self._lock:
            cached = self._keys.get(kid)
            loaded = self._fetched_at is not None
        if cached is None:
            if not loaded:
                raise InvalidTokenError("signing keys are unavailable")
            raise InvalidTokenError(f"unknown kid {kid!r}")
        return cached

    def _refresh(self, done: threading.Event) -> bool:
        """Fetch and install the key set (no lock held while fetching); True on success."""
        try:
            keys = _parse_jwks(self._fetch())
        except Exception as exc:
            logger.warning("JWKS refresh failed: %s", exc)
            with self._lock:
                self._failures += 1
                delay = self._backoff * 2 ** min(self._failures - 1, 30)
                cap = max(self._min_refetch, self._backoff)
                self._next_fetch_at = self._clock() + min(delay, cap)
            return False
        else:
            with self._lock:
                self._keys = keys
                self._fetched_at = self._clock()
                self._failures = 0
                self._next_fetch_at = self._fetched_at + self._min_refetch
            return True
        finally:
            with self._lock:
                self._in_flight = None
            done.set()


def _parse_jwks(document: dict[str, Any]) -> dict[str, _CachedKey]:
    keys: dict[str, _CachedKey] = {}
    for jwk in document.get("keys", []):
        kid = jwk.get("kid")
        alg = jwk.get("alg")
        if not kid or alg not in ALLOWED_ALGORITHMS or jwk.get("use", "sig") != "sig":
            continue
        try:
            parsed = jwt.PyJWK.from_dict(jwk, algorithm=alg)
        except jwt.PyJWTError:
            logger.warning("skipping unusable JWK %s", kid)
            continue
        keys[kid] = _CachedKey(key=parsed.key, algorithm=alg)
    if not keys:
        # A users service that publishes nothing usable is broken, not rotating: keep the
        # keys we have.
        raise ValueError("the JWKS holds no usable key")
    return keys


class TokenVerifier:
    """Checks access tokens. Verified tokens are remembered until they expire (a bounded
    cache): a client sends the same token with every request for up to 15 minutes, and a
    signature check costs more than the rest of a cheap request."""

    cache_size = 20_000

    def __init__(
        self, keys: JWKSCache, *, issuer: str, audience: str, leeway_seconds: int = 10
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway_seconds
        self._verified: dict[str, tuple[float, Principal]] = {}

    def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        if cached is not None:
            expires_at, principal = cached
            if time.time() < expires_at + self.leeway:
                return principal
            self._verified.pop(token, None)
        principal = self._verify(token)
        if len(self._verified) >= self.cache_size:
            self._verified.clear()  # crude but bounded; tokens re-verify once
        self._verified[token] = (float(principal.claims["exp"]), principal)
        return principal

    def _verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(f"malformed token: {exc}") from exc
        kid = header.get("kid")
        alg = header.get("alg")
        if not isinstance(kid, str) or not kid:
            raise InvalidTokenError("token has no kid")
        if alg not in ALLOWED_ALGORITHMS:
            raise InvalidTokenError(f"algorithm {alg!r} refused")
        cached = self.keys.get(kid)
        if alg != cached.algorithm:
            raise InvalidTokenError(f"algorithm {alg!r} does not match key {kid!r}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                cached.key,
                algorithms=[cached.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(str(exc)) from exc
        role = claims.get("role")
        sub = claims.get("sub")
        if role not in ROLES or not isinstance(sub, str) or not sub:
            raise InvalidTokenError("token has an invalid subject or role")
        return Principal(id=sub, role=role, token_id=str(claims["jti"]), claims=claims)


_verifier: TokenVerifier | None = None
_verifier_lock = threading.Lock()


def get_verifier() -> TokenVerifier:
    """The process-wide verifier, built from settings on first use.

    `JWT_JWKS_SOURCE` (a dotted path to a callable returning the JWKS document) lets the users
    service read its own keys without an HTTP call to itself; everyone else fetches
    `JWT_JWKS_URL`.
    """
    global _verifier
    if _verifier is None:
        with _verifier_lock:
            if _verifier is None:
                source = getattr(settings, "JWT_JWKS_SOURCE", None)
                if source:
                    fetch: JWKSFetcher = import_string(source)
                else:
                    url = settings.JWT_JWKS_URL

                    def fetch() -> dict[str, Any]:
                        return fetch_jwks_over_http(url)

                keys = JWKSCache(
                    fetch,
                    max_age_seconds=settings.JWT_JWKS_CACHE_SECONDS,
                    min_refetch_seconds=settings.JWT_JWKS_MIN_REFETCH_SECONDS,
                )
                _verifier = TokenVerifier(
                    keys,
                    issuer=settings.JWT_ISSUER,
                    audience=settings.JWT_AUDIENCE,
                    leeway_seconds=settings.JWT_LEEWAY_SECONDS,
                )
    return _verifier


def reset_verifier() -> None:
    """Forget the cached verifier (tests that change the JWT settings call this)."""
    global _verifier
    with _verifier_lock:
        _verifier = None


class BadAuthorizationHeaderError(InvalidTokenError):
    """The Authorization header is not `Bearer <one token>`."""


def bearer_principal(header: bytes) -> Principal | None:
    """Who an `Authorization` header names: None when it is not a bearer header, the
    `Principal` of a valid token, `InvalidTokenError` otherwise. Every way into a service
    (DRF views, the batched booking view) authenticates with this."""
    parts = header.split()
    if not parts or parts[0].decode("latin-1").lower() != "bearer":
        return None
    if len(parts) != 2:
        raise BadAuthorizationHeaderError("Invalid Authorization header.")
    try:
        token = parts[1].decode("ascii")
    except UnicodeDecodeError as exc:
        raise BadAuthorizationHeaderError("Invalid Authorization header.") from exc
    return get_verifier().verify(token)


class JWTAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <access token>` → `request.user` is a `Principal`."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Principal, str] | None:
        header = authentication.get_authorization_header(request)
        try:
            principal = bearer_principal(header)
        except BadAuthorizationHeaderError as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from exc
        except InvalidTokenError as exc:
            logger.info("token refused: %s", exc)
            raise exceptions.AuthenticationFailed(
                "The access token is invalid or expired."
            ) from exc
        if principal is None:
            return None
        return principal, header.split()[1].decode("ascii")

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'
