"""Fixtures of the booking service's tests: real signed tokens verified against a JWKS
served over real HTTP, and API clients for each role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings

from booking_service.testing import Caller, make_caller
from servicekit.auth import reset_verifier
from servicekit.testing import TestTokenIssuer, serve_jwks


@pytest.fixture(scope="session")
def token_issuer() -> TestTokenIssuer:
    return TestTokenIssuer(issuer=django_settings.JWT_ISSUER, audience=django_settings.JWT_AUDIENCE)


@pytest.fixture(scope="session")
def jwks_url(token_issuer: TestTokenIssuer) -> Iterator[str]:
    with serve_jwks(token_issuer) as url:
        yield url


@pytest.fixture(autouse=True)
def _no_listing_cache(settings: Any) -> None:
    # Tests see their own writes at once; test_list_cache turns the cache back on.
    settings.BOOKING_EVENT_LIST_CACHE_SECONDS = 0


@pytest.fixture(autouse=True)
def _verify_tokens_against_test_jwks(settings: Any, jwks_url: str) -> Iterator[None]:
    settings.JWT_JWKS_URL = jwks_url
    reset_verifier()
    yield
    reset_verifier()


@pytest.fixture
def new_caller(token_issuer: TestTokenIssuer) -> Callable[[str], Caller]:
    def make(role: str = "customer") -> Caller:
        return make_caller(token_issuer, role)

    return make


@pytest.fixture
def customer(new_caller: Callable[[str], Caller]) -> Caller:
    return new_caller("customer")


@pytest.fixture
def other_customer(new_caller: Callable[[str], Caller]) -> Caller:
    return new_caller("customer")


@pytest.fixture
def organizer(new_caller: Callable[[str], Caller]) -> Caller:
    return new_caller("organizer")


@pytest.fixture
def other_organizer(new_caller: Callable[[str], Caller]) -> Caller:
    return new_caller("organizer")


@pytest.fixture
def admin(new_caller: Callable[[str], Caller]) -> Caller:
    return new_caller("admin")
