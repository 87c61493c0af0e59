from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from servicekit.auth import get_verifier
from users_service.accounts.models import User
from users_service.conftest import PASSWORD
from users_service.tokens.models import RefreshToken, SigningKey

pytestmark = pytest.mark.django_db


def login(api: APIClient, email: str, password: str = PASSWORD) -> Any:
    return api.post("/api/users/login", {"email": email, "password": password}, format="json")


class TestLogin:
    def test_returns_a_token_pair_and_the_user(self, api: APIClient, customer: User) -> None:
        response = login(api, customer.email.upper())  # email matches whatever its case
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 900
        assert body["user"]["id"] == str(customer.id)
        header = jwt.get_unverified_header(body["access"])
        assert header["alg"] == "EdDSA"
        assert header["kid"] == SigningKey.objects.get(retired_at__isnull=True).kid
        claims = get_verifier().verify(body["access"]).claims
        assert claims["sub"] == str(customer.id)
        assert claims["role"] == "customer"
        assert claims["iss"] == "turnstile-users"
        assert claims["aud"] == "turnstile"
        assert claims["jti"]
        assert 0 < claims["exp"] - claims["iat"] <= 15 * 60

    def test_unknown_email_and_wrong_password_look_the_same(
        self, api: APIClient, customer: User
    ) -> None:
        wrong_password = login(api, customer.email, "not-the-Password-1")
        unknown_email = login(api, "nobody@example.com", "not-the-Password-1")
        assert wrong_password.status_code == unknown_email.status_code == 401
        assert wrong_password.json() == unknown_email.json()
        assert wrong_password["Content-Type"] == "application/problem+json"

    def test_inactive_account_cannot_log_in(self, api: APIClient, customer: User) -> None:
        User.objects.filter(pk=customer.pk).update(is_active=False)
        assert login(api, customer.email).status_code == 401

    def test_bad_input(self, api: APIClient) -> None:
        assert api.post("/api/users/login", {}, format="json").status_code == 400
        response = api.post("/api/users/login", data="{", content_type="application/json")
        assert response.status_code == 400
        assert response["Content-Type"] == "application/problem+json"


class TestRefresh:
    def test_rotates_on_use(self, api: APIClient, customer: User) -> None:
        first = login(api, customer.email).json()
        response = api.post(
            "/api/users/token/refresh", {"refresh": first["refresh"]}, format="json"
        )
        assert response.status_code == 200
        second = response.json()
        assert second["refresh"] != first["refresh"]
        assert get_verifier().verify(second["access"]).id == str(customer.id)
        assert (
            RefreshToken.objects.filter(used_at__isnull=True, revoked_at__isnull=True).count() == 1
        )

    def test_reuse_of_a_rotated_token_revokes_the_family(
        self, api: APIClient, customer: User
    ) -> None:
        first = login(api, customer.email).json()
        other_session = login(api, customer.email).json()
        second = api.post("/api/users/token/refresh", {"refresh": first["refresh"]}).json()

        replay = api.post("/api/users/token/refresh", {"refresh": first["refresh"]})
        assert replay.status_code == 401
        # The thief's replay also kills the legitimate successor...
        after = api.post("/api/users/token/refresh", {"refresh": second["refresh"]})
        assert after.status_code == 401
        # ...but not another login of the same user.
        other = api.post("/api/users/token/refresh", {"refresh": other_session["refresh"]})
        assert other.status_code == 200

    def test_expired_refresh_token(self, api: APIClient, customer: User) -> None:
        first = login(api, customer.email).json()
        RefreshToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        response = api.post("/api/users/token/refresh", {"refresh": first["refresh"]})
        assert response.status_code == 401

    def test_garbage_token(self, api: APIClient) -> None:
        response = api.post("/api/users/token/refresh", {"refresh": "nope"}, format="json")
        assert response.status_code == 401
        response = api.post("/api/users/token/refresh", {"refresh": "x" * 5000}, format="json")
        assert response.status_code == 400


class TestLogout:
    def test_revokes_the_family(self, api: APIClient, customer: User) -> None:
        first = login(api, customer.email).json()
        second = api.post("/api/users/token/refresh/", {"refresh": first["refresh"]}).json()
        response = api.post("/api/users/logout", {"refresh": second["refresh"]}, format="json")
        assert response.status_code == 204
        assert (
            api.post("/api/users/token/refresh", {"refresh": second["refresh"]}).status_code == 401
        )

    def test_unknown_token_is_accepted_silently(self, api: APIClient) -> None:
        assert api.post("/api/users/logout/", {"refresh": "unknown"}).status_code == 204


class TestJwksAndRotation:
    def test_jwks_publishes_the_active_public_key(self, api: APIClient, customer: User) -> None:
        login(api, customer.email)
        for path in ("/.well-known/jwks.json", "/.well-known/jwks.json/"):
            keys = api.get(path).json()["keys"]
            assert len(keys) == 1
            assert keys[0]["kty"] == "OKP"
            assert keys[0]["alg"] == "EdDSA"
            assert "d" not in keys[0]  # never the private part

    def test_rotation_keeps_old_tokens_valid_until_they_expire(
        self, api: APIClient, customer: User
    ) -> None:
        old_access = login(api, customer.email).json()["access"]
        old_kid = jwt.get_unverified_header(old_access)["kid"]
        call_command("rotate_signing_key")
        new_access = login(api, customer.email).json()["access"]
        new_kid = jwt.get_unverified_header(new_access)["kid"]
        assert new_kid != old_kid
        kids = {key["kid"] for key in api.get("/.well-known/jwks.json").json()["keys"]}
        assert kids == {old_kid, new_kid}
        verifier = get_verifier()
        assert verifier.verify(old_access).id == verifier.verify(new_access).id

        # Once every token the old key signed has expired, it leaves the JWKS.
        SigningKey.objects.filter(kid=old_kid).update(
            retired_at=timezone.now() - timedelta(hours=2)
        )
        kids = {key["kid"] for key in api.get("/.well-known/jwks.json").json()["keys"]}
        assert kids == {new_kid}

    def test_private_keys_are_encrypted_at_rest(self, api: APIClient, customer: User) -> None:
        login(api, customer.email)
        pem = bytes(SigningKey.objects.get().private_key_pem)
        assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")


class TestServiceToken:
    def test_issue_service_token_command(self, capsys: pytest.CaptureFixture[str]) -> None:
        call_command("issue_service_token", "booking")
        token = capsys.readouterr().out.strip()
        principal = get_verifier().verify(token)
        assert principal.role == "service"
        assert principal.id == "service:booking"
        assert principal.is_service
