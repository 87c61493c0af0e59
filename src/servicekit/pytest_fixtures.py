"""pytest fixtures for every service's tests (loaded with `-p servicekit.pytest_fixtures`,
see pyproject.toml): real signed tokens, checked against a JWKS served over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings

from servicekit.auth import reset_verifier
from servicekit.testing import Caller, TestTokenIssuer, make_caller, serve_jwks


@pytest.fixture(scope="session")
def token_issuer() -> TestTokenIssuer:
    return TestTokenIssuer(issuer=django_settings.JWT_ISSUER, audience=django_settings.JWT_AUDIENCE)


@pytest.fixture(scope="session")
def jwks_url(token_issuer: TestTokenIssuer) -> Iterator[str]:
    with serve_jwks(token_issuer) as url:
        yield url


@pytest.fixture(autouse=True)
def verify_tokens_against_test_jwks(settings: Any, jwks_url: str) -> Iterator[None]:
    settings.JWT_JWKS_URL = jwks_url
    reset_verifier()
    yield
    reset_verifier()


@pytest.fixture
def new_caller(token_issuer: TestTokenIssuer) -> Callable[[str], Caller]:
    """`new_caller(role)`: a fresh caller with a token from `token_issuer`."""

    def make(role: str = "customer") -> Caller:
        return make_caller(token_issuer, role)

    return make


# Callers by role (the users service has its own: real users with passwords).
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


@pytest.fixture
def service(new_caller: Callable[[str], Caller]) -> Caller:
    return new_caller("service")
