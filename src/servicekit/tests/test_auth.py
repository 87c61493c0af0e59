"""Token attacks the verifier must refuse, with keys served over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from servicekit.auth import (
    InvalidTokenError,
    JWKSCache,
    Principal,
    TokenVerifier,
    fetch_jwks_over_http,
)
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


class JWKSServer:
    """The issuer's JWKS over real HTTP, counting the fetches it answers; it can be made
    slow or stopped."""

    def __init__(self, issuer: TestTokenIssuer) -> None:
        self.delay = 0.0
        self.fetches = 0
        server_state = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with counter_lock:
                    server_state.fetches += 1
                time.sleep(server_state.delay)
                body = json.dumps(issuer.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        class QuietServer(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                return  # a client that timed out on a slow answer

        counter_lock = threading.Lock()
        self._server = QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))
        self._thread.start()
        self._running = True

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()


@pytest.fixture
def jwks_server(issuer: TestTokenIssuer) -> Iterator[JWKSServer]:
    server = JWKSServer(issuer)
    try:
        yield server
    finally:
        server.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verifier_for(url: str, clock: Clock, min_refetch_seconds: float = 30) -> TokenVerifier:
    cache = JWKSCache(
        lambda: fetch_jwks_over_http(url), min_refetch_seconds=min_refetch_seconds, clock=clock
    )
    return TokenVerifier(cache, issuer=ISSUER, audience=AUDIENCE)


def random_kid_token(issuer: TestTokenIssuer) -> str:
    return issuer.token("user-1", headers={"kid": uuid.uuid4().hex})


def timed_verify(verifier: TokenVerifier, token: str) -> tuple[float, object]:
    """How long verifying took, and the principal or the refusal."""
    started = time.monotonic()
    try:
        outcome: object = verifier.verify(token)
    except InvalidTokenError as exc:
        outcome = exc
    return time.monotonic() - started, outcome


def timed_burst(verifier: TokenVerifier, tokens: list[str]) -> list[tuple[float, object]]:
    """Verify the tokens from 16 threads at once."""
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(lambda token: timed_verify(verifier, token), tokens))


def test_a_burst_of_unknown_kids_costs_one_fetch_per_interval(
    issuer: TestTokenIssuer, jwks_server: JWKSServer
) -> None:
    clock = Clock()
    verifier = verifier_for(jwks_server.url, clock)
    verifier.verify(issuer.token("user-1"))
    assert jwks_server.fetches == 1
    tokens = [random_kid_token(issuer) for _ in range(400)]
    outcomes = timed_burst(verifier, tokens)
    assert all(isinstance(outcome, InvalidTokenError) for _, outcome in outcomes)
    assert jwks_server.fetches == 1  # within the interval: no fetch at all

    # The interval has passed and the users service answers slowly: the whole burst still
    # makes one fetch, however many threads ask at once.
    clock.now += 30
    jwks_server.delay = 0.3
    outcomes = timed_burst(verifier, tokens)
    assert all(isinstance(outcome, InvalidTokenError) for _, outcome in outcomes)
    assert jwks_server.fetches == 2


def test_requests_do_not_wait_for_a_slow_jwks_server(
    issuer: TestTokenIssuer, jwks_server: JWKSServer
) -> None:
    clock = Clock()
    verifier = verifier_for(jwks_server.url, clock)
    verifier.verify(issuer.token("user-1"))
    clock.now += 30
    jwks_server.delay = 3.0  # as long as the fetch timeout

    fetcher = threading.Thread(target=timed_verify, args=(verifier, random_kid_token(issuer)))
    fetcher.start()
    deadline = time.monotonic() + 2
    while jwks_server.fetches < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert jwks_server.fetches == 2  # the fetch is in flight
    try:
        unknown = timed_burst(verifier, [random_kid_token(issuer) for _ in range(32)])
        known = timed_burst(verifier, [issuer.token(f"user-{n}") for n in range(32)])
    finally:
        fetcher.join()
    assert all(isinstance(outcome, InvalidTokenError) for _, outcome in unknown)
    assert all(isinstance(outcome, Principal) for _, outcome in known)
    # Well before the 3 s the fetch takes: nobody waited on it.
    assert max(elapsed for elapsed, _ in unknown + known) < 1.0
    assert jwks_server.fetches == 2


def test_a_stopped_jwks_server_is_retried_with_backoff(
    issuer: TestTokenIssuer, jwks_server: JWKSServer
) -> None:
    clock = Clock()
    attempts = []
    url = jwks_server.url

    def fetch() -> dict[str, Any]:
        attempts.append(clock.now)
        return fetch_jwks_over_http(url)

    verifier = TokenVerifier(
        JWKSCache(fetch, min_refetch_seconds=30, clock=clock), issuer=ISSUER, audience=AUDIENCE
    )
    verifier.verify(issuer.token("user-1"))
    jwks_server.stop()
    clock.now += 30
    # Every 0.5 s for 100 s, a token with a made-up kid and one with the known key.
    for _ in range(200):
        elapsed, outcome = timed_verify(verifier, random_kid_token(issuer))
        assert isinstance(outcome, InvalidTokenError)
        elapsed, outcome = timed_verify(verifier, issuer.token("user-2"))
        assert isinstance(outcome, Principal)
        assert elapsed < 1.0
        clock.now += 0.5
    # After each failure the wait doubles from 1 s, up to the refetch interval.
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts[1:])]
    assert gaps == [1, 2, 4, 8, 16, 30, 30]


def test_concurrent_first_requests_share_one_fetch(
    issuer: TestTokenIssuer, jwks_server: JWKSServer
) -> None:
    verifier = verifier_for(jwks_server.url, Clock())
    jwks_server.delay = 0.3
    tokens = [issuer.token(f"user-{n}") for n in range(16)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        principals = list(pool.map(verifier.verify, tokens))
    assert [p.id for p in principals] == [f"user-{n}" for n in range(16)]
    assert jwks_server.fetches == 1
