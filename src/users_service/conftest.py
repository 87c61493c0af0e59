from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from servicekit.auth import reset_verifier
from users_service.accounts.models import Role, User
from users_service.accounts.services import user_register

PASSWORD = "correct-horse-Battery-9"


@pytest.fixture(autouse=True)
def _fresh_verifier() -> None:
    # The verifier caches keys per process; each test's database has its own keys.
    reset_verifier()


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def make_user(db: Any) -> Callable[..., User]:
    counter = iter(range(1_000_000))

    def make(role: str = Role.CUSTOMER, **kwargs: Any) -> User:
        n = next(counter)
        email = kwargs.pop("email", f"user{n}@example.com")
        name = kwargs.pop("name", f"User {n}")
        user = user_register(
            name=name,
            email=email,
            password=PASSWORD,
            role=Role.CUSTOMER if role == Role.ADMIN else role,
        )
        if role == Role.ADMIN:
            User.objects.filter(pk=user.pk).update(role=Role.ADMIN)
            user.refresh_from_db()
        return user

    return make


def login_client(user: User) -> APIClient:
    client = APIClient()
    response = client.post(
        "/api/users/login", {"email": user.email, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    return client


@pytest.fixture
def customer(make_user: Callable[..., User]) -> User:
    return make_user(Role.CUSTOMER)


@pytest.fixture
def admin(make_user: Callable[..., User]) -> User:
    return make_user(Role.ADMIN)


@pytest.fixture
def customer_client(customer: User) -> APIClient:
    return login_client(customer)


@pytest.fixture
def admin_client(admin: User) -> APIClient:
    return login_client(admin)
