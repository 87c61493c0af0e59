from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import jwt
import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from servicekit.auth import get_verifier
from servicekit.models import CacheEntry
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


def refresh(api: APIClient, token: str) -> Any:
    return api.post("/api/users/token/refresh", {"refresh": token}, format="json")


class TestSessionLifetime:
    def test_refresh_past_the_maximum_age_is_refused(self, api: APIClient, customer: User) -> None:
        first = login(api, customer.email).json()
        second = refresh(api, first["refresh"]).json()
        # The family started 30 days ago (the default); its newest token has not expired.
        RefreshToken.objects.update(
            family_started_at=timezone.now() - timedelta(days=30, seconds=1)
        )
        response = refresh(api, second["refresh"])
        assert problem_type(response, 401) == "urn:problem:session-expired"
        assert RefreshToken.objects.filter(expires_at__gt=timezone.now()).exists()

    def test_a_refresh_never_outlives_the_session(
        self, api: APIClient, customer: User, settings: Any
    ) -> None:
        settings.SESSION_MAX_AGE_SECONDS = 3600
        first = login(api, customer.email).json()
        started_at = RefreshToken.objects.get().family_started_at
        ends_at = started_at + timedelta(hours=1)
        assert RefreshToken.objects.get().expires_at == ends_at
        # Fifty minutes in, a refresh is still allowed, and its token ends with the session,
        # not JWT_REFRESH_TOKEN_SECONDS (14 days) from now.
        RefreshToken.objects.update(family_started_at=started_at - timedelta(minutes=50))
        second = refresh(api, first["refresh"]).json()
        token = RefreshToken.objects.get(used_at__isnull=True)
        assert token.family_started_at == started_at - timedelta(minutes=50)
        assert token.expires_at == started_at + timedelta(minutes=10)
        # The session keeps its start whatever the refreshes: ten more minutes and it is over.
        RefreshToken.objects.update(family_started_at=started_at - timedelta(hours=1))
        response = refresh(api, second["refresh"])
        assert problem_type(response, 401) == "urn:problem:session-expired"

    def test_access_tokens_name_their_session(self, api: APIClient, customer: User) -> None:
        first = login(api, customer.email).json()
        second = refresh(api, first["refresh"]).json()
        family = str(RefreshToken.objects.values_list("family", flat=True).distinct().get())
        assert get_verifier().verify(first["access"]).claims["sid"] == family
        assert get_verifier().verify(second["access"]).claims["sid"] == family


class TestLogoutAll:
    def test_revokes_every_session_of_the_caller(
        self, api: APIClient, customer: User, make_user: Any
    ) -> None:
        sessions = [login(api, customer.email).json() for _ in range(3)]
        rotated = refresh(api, sessions[2]["refresh"]).json()
        someone_else = login(api, make_user().email).json()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {sessions[0]['access']}")
        response = client.post("/api/users/logout/all")
        assert response.status_code == 204
        for token in [sessions[0]["refresh"], sessions[1]["refresh"], rotated["refresh"]]:
            assert problem_type(refresh(api, token), 401) == "urn:problem:invalid-refresh-token"
        assert refresh(api, someone_else["refresh"]).status_code == 200
        assert client.post("/api/users/logout/all/").status_code == 204  # both spellings

    def test_needs_a_person_s_token(self, api: APIClient, customer: User) -> None:
        session = login(api, customer.email).json()
        assert problem_type(api.post("/api/users/logout/all"), 401)
        call_command("issue_service_token", "booking", stdout=(out := io.StringIO()))
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {out.getvalue().strip()}")
        assert problem_type(api.post("/api/users/logout/all"), 403)
        assert refresh(APIClient(), session["refresh"]).status_code == 200

    def test_is_documented(self, api: APIClient) -> None:
        operation = api.get("/api/schema/?format=json").json()["paths"]["/api/users/logout/all/"]
        responses = operation["post"]["responses"]
        assert {"204", "401", "403"} <= responses.keys()
        assert "requestBody" not in operation["post"]


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


def rows() -> list[tuple[Any, ...]]:
    """Everything a login, refresh or logout could change."""
    return [
        *User.objects.values_list("id", "updated_at"),
        *RefreshToken.objects.values_list("id", "used_at", "revoked_at"),
        *CacheEntry.objects.values_list("cache_key", "current_count"),  # rate-limit counters
    ]


def problem_type(response: Any, status: int) -> str:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return str(response.json()["type"])


class TestBodyLimits:
    """Bodies the parser refuses, each wrapped around credentials that would log in."""

    @pytest.mark.parametrize(
        ("extra", "code"),
        [
            (b"[" * 50_000, "malformed-json"),
            (b"[" * 40 + b"]" * 40, "json-too-deep"),
            (b"1e400", "json-number-out-of-range"),
            (str(2**70).encode(), "json-number-out-of-range"),
            (b"NaN", "malformed-json"),
            (b"Infinity", "malformed-json"),
            (b"-Infinity", "malformed-json"),
            (b'"a\\u0000b"', "json-nul-character"),
            (b'"\xff\xfe"', "malformed-json"),
        ],
        ids=["50000-brackets", "depth-40", "1e400", "2**70", "nan", "infinity", "-infinity",
             "nul", "invalid-utf8"],
    )  # fmt: skip
    def test_refused_before_anything_happens(
        self, api: APIClient, customer: User, extra: bytes, code: str
    ) -> None:
        before = rows()
        body = b'{"email": "%s", "password": "%s", "x": %s}' % (
            customer.email.encode(),
            PASSWORD.encode(),
            extra,
        )
        response = api.post("/api/users/login", data=body, content_type="application/json")
        assert problem_type(response, 400) == f"urn:problem:{code}"
        assert rows() == before

    def test_a_bare_deep_body_is_400(self, api: APIClient) -> None:
        response = api.post("/api/users/login", data="[" * 50_000, content_type="application/json")
        assert problem_type(response, 400) == "urn:problem:malformed-json"

    def test_oversized_body_is_413(self, api: APIClient, customer: User) -> None:
        before = rows()
        body = {"email": customer.email, "password": PASSWORD, "x": "a" * 300_000}
        response = api.post("/api/users/login", body, format="json")
        assert problem_type(response, 413) == "urn:problem:body-too-large"
        assert rows() == before

    def test_content_length_over_the_limit_is_413_whatever_the_body(
        self, api: APIClient, customer: User
    ) -> None:
        before = rows()
        body = json.dumps({"email": customer.email, "password": PASSWORD})
        response = api.generic(
            "POST", "/api/users/login", body, "application/json", CONTENT_LENGTH="999999999"
        )
        assert problem_type(response, 413) == "urn:problem:body-too-large"
        assert rows() == before

    def test_wrong_content_type_is_a_415_problem(self, api: APIClient, customer: User) -> None:
        before = rows()
        body = json.dumps({"email": customer.email, "password": PASSWORD})
        for content_type in ("text/plain", "application/x-www-form-urlencoded"):
            response = api.post("/api/users/login", data=body, content_type=content_type)
            assert problem_type(response, 415) == "urn:problem:unsupported-media-type"
        assert rows() == before


class TestStrictTypes:
    @pytest.mark.parametrize("refresh", [0, 1, True, None, ["x"], {"a": 1}, ""])
    @pytest.mark.parametrize("path", ["/api/users/token/refresh", "/api/users/logout"])
    def test_refresh_that_is_not_a_string_is_400(
        self, api: APIClient, customer: User, path: str, refresh: Any
    ) -> None:
        assert login(api, customer.email).status_code == 200
        before = rows()
        response = api.post(path, {"refresh": refresh}, format="json")
        assert problem_type(response, 400) == "urn:problem:validation-error"
        assert set(response.json()["errors"]) == {"refresh"}
        assert rows() == before

    @pytest.mark.parametrize(
        "body",
        [{"email": 5, "password": PASSWORD}, {"email": "x@example.com", "password": 12345678}],
    )
    def test_login_fields_must_be_strings(self, api: APIClient, body: dict[str, Any]) -> None:
        before = rows()
        response = api.post("/api/users/login", body, format="json")
        assert problem_type(response, 400) == "urn:problem:validation-error"
        assert rows() == before
