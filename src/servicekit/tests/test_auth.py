"""Token attacks the verifier must refuse, with keys served over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from servicekit.auth import InvalidTokenError, JWKSCache, TokenVerifier, fetch_jwks_over_http
from servicekit.testing import TestTokenIssuer, serve_jwks

ISSUER = "turnstile-users"
AUDIENCE = "turnstile"


class CountingFetch:
    def __init__(self, url: str) -> None:
        self.url = url
        self.calls = 0

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        return fetch_jwks_over_http(self.url)


@pytest.fixture
def issuer() -> TestTokenIssuer:
    return TestTokenIssuer(issuer=ISSUER, audience=AUDIENCE)


@pytest.fixture
def jwks_url(issuer: TestTokenIssuer) -> Iterator[str]:
    with serve_jwks(issuer) as url:
        yield url


@pytest.fixture
def fetch(jwks_url: str) -> CountingFetch:
    return CountingFetch(jwks_url)


@pytest.fixture
def verifier(fetch: CountingFetch) -> TokenVerifier:
    return TokenVerifier(
        JWKSCache(fetch, min_refetch_seconds=0), issuer=ISSUER, audience=AUDIENCE, leeway_seconds=0
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_a_valid_token_gives_the_principal(
    issuer: TestTokenIssuer, verifier: TokenVerifier
) -> None:
    principal = verifier.verify(issuer.token("user-1", "organizer"))
    assert (principal.id, principal.role, principal.is_organizer) == ("user-1", "organizer", True)


def test_alg_none_is_refused(issuer: TestTokenIssuer, verifier: TokenVerifier) -> None:
    claims = jwt.decode(issuer.token("user-1"), options={"verify_signature": False})
    header = {"alg": "none", "typ": "JWT", "kid": issuer.kid}
    token = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."
    with pytest.raises(InvalidTokenError, match="algorithm"):
        verifier.verify(token)


def test_hs256_signed_with_the_public_key_is_refused(
    issuer: TestTokenIssuer, verifier: TokenVerifier
) -> None:
    public_pem = issuer.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = jwt.decode(issuer.token("user-1", "admin"), options={"verify_signature": False})
    header = {"alg": "HS256", "typ": "JWT", "kid": issuer.kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    for secret in (public_pem, json.dumps(issuer.jwk()).encode(), issuer.jwk()["x"].encode()):
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        with pytest.raises(InvalidTokenError):
            verifier.verify(f"{signing_input}.{b64(signature)}")


def test_expired_token(issuer: TestTokenIssuer, verifier: TokenVerifier) -> None:
    token = issuer.token("user-1", iat=int(time.time()) - 120, exp=int(time.time()) - 60)
    with pytest.raises(InvalidTokenError, match="expired"):
        verifier.verify(token)


@pytest.mark.parametrize(
    ("claim", "value"), [("aud", "someone-else"), ("iss", "https://evil.example")]
)
def test_wrong_audience_or_issuer(
    issuer: TestTokenIssuer, verifier: TokenVerifier, claim: str, value: str
) -> None:
    claims: dict[str, Any] = {claim: value}
    token = issuer.token("user-1", "customer", **claims)
    with pytest.raises(InvalidTokenError):
        verifier.verify(token)


def test_tampered_payload(issuer: TestTokenIssuer, verifier: TokenVerifier) -> None:
    header, payload, signature = issuer.token("user-1", "customer").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin"
    forged = f"{header}.{b64(json.dumps(claims).encode())}.{signature}"
    with pytest.raises(InvalidTokenError, match=r"[Ss]ignature"):
        verifier.verify(forged)


def test_token_from_another_key_with_a_known_kid(
    issuer: TestTokenIssuer, verifier: TokenVerifier
) -> None:
    impostor = TestTokenIssuer(issuer=ISSUER, audience=AUDIENCE, kid=issuer.kid)
    with pytest.raises(InvalidTokenError):
        verifier.verify(impostor.token("user-1", "admin"))


def test_unknown_kid_is_refetched_once_then_refused(
    issuer: TestTokenIssuer, verifier: TokenVerifier, fetch: CountingFetch
) -> None:
    verifier.verify(issuer.token("user-1"))
    assert fetch.calls == 1
    stranger = TestTokenIssuer(issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(InvalidTokenError, match="unknown kid"):
        verifier.verify(stranger.token("user-1"))
    assert fetch.calls == 2


def test_a_rotated_key_is_picked_up_without_restart(issuer: TestTokenIssuer) -> None:
    published = [issuer]
    cache = JWKSCache(lambda: {"keys": [i.jwk() for i in published]}, min_refetch_seconds=0)
    verifier = TokenVerifier(cache, issuer=ISSUER, audience=AUDIENCE)
    assert verifier.verify(issuer.token("a")).id == "a"
    rotated = TestTokenIssuer(issuer=ISSUER, audience=AUDIENCE)
    published.append(rotated)  # the users service rotated its key
    assert verifier.verify(rotated.token("b")).id == "b"
    assert verifier.verify(issuer.token("a")).id == "a"  # old tokens still valid


def test_refetch_is_rate_limited(issuer: TestTokenIssuer, fetch: CountingFetch) -> None:
    verifier = TokenVerifier(
        JWKSCache(fetch, min_refetch_seconds=60), issuer=ISSUER, audience=AUDIENCE
    )
    verifier.verify(issuer.token("user-1"))
    stranger = TestTokenIssuer(issuer=ISSUER, audience=AUDIENCE)
    for _ in range(5):
        with pytest.raises(InvalidTokenError):
            verifier.verify(stranger.token("user-1"))
    assert fetch.calls == 1  # garbage kids cannot make us hammer the users service


@pytest.mark.parametrize("missing", ["jti", "sub", "exp", "iat", "role"])
def test_required_claims(issuer: TestTokenIssuer, verifier: TokenVerifier, missing: str) -> None:
    claims = jwt.decode(issuer.token("user-1"), options={"verify_signature": False})
    del claims[missing]
    token = jwt.encode(claims, issuer.private_key, algorithm="EdDSA", headers={"kid": issuer.kid})
    with pytest.raises(InvalidTokenError):
        verifier.verify(token)


def test_unknown_role_is_refused(issuer: TestTokenIssuer, verifier: TokenVerifier) -> None:
    with pytest.raises(InvalidTokenError):
        verifier.verify(issuer.token("user-1", "superuser"))


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 5000, "e30.e30.e30"])
def test_garbage(verifier: TokenVerifier, garbage: str) -> None:
    with pytest.raises(InvalidTokenError):
        verifier.verify(garbage)


def test_users_service_outage_keeps_cached_keys(issuer: TestTokenIssuer) -> None:
    state = {"up": True}
    with serve_jwks(issuer) as url:

        def flaky() -> dict[str, Any]:
            if not state["up"]:
                raise OSError("connection refused")
            return fetch_jwks_over_http(url)

        clock = [0.0]
        cache = JWKSCache(flaky, max_age_seconds=10, clock=lambda: clock[0])
        verifier = TokenVerifier(cache, issuer=ISSUER, audience=AUDIENCE)
        verifier.verify(issuer.token("u"))
        state["up"] = False
        clock[0] = 100.0  # cache is stale and the refresh fails
        assert verifier.verify(issuer.token("u")).id == "u"


def test_a_remembered_token_still_expires(
    issuer: TestTokenIssuer, verifier: TokenVerifier, fetch: CountingFetch
) -> None:
    token = issuer.token("user-1", ttl_seconds=1)
    assert verifier.verify(token).id == "user-1"
    assert verifier.verify(token).id == "user-1"  # from the cache
    time.sleep(1.1)
    with pytest.raises(InvalidTokenError, match="expired"):
        verifier.verify(token)
