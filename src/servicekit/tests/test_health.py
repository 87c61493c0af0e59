import socket
import time
from typing import Any

import pytest
from rest_framework.test import APIClient

from servicekit.auth import reset_verifier
from servicekit.testing import TestTokenIssuer


@pytest.mark.django_db
def test_live_answers_without_a_token() -> None:
    response = APIClient().get("/health/live")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.fixture
def issuer(settings: Any, token_issuer: TestTokenIssuer) -> TestTokenIssuer:
    """Tokens this service accepts: verified against the test JWKS (this suite runs with
    the users service's settings, which otherwise read the keys from its own database)."""
    settings.JWT_JWKS_SOURCE = None
    reset_verifier()
    return token_issuer


def ready(token: str | None = None) -> tuple[int, dict[str, Any]]:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.get("/health/ready/")
    assert "no-store" in response["Cache-Control"]
    assert "Authorization" in response["Vary"]
    return response.status_code, response.json()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["admin", "service"])
def test_ready_shows_the_checks_to_admins_and_services(issuer: TestTokenIssuer, role: str) -> None:
    status, body = ready(issuer.token("u1", role))
    assert status == 200, body
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["bus"]["ok"] is True


@pytest.mark.django_db
def test_ready_tells_anyone_else_the_status_alone(issuer: TestTokenIssuer) -> None:
    now = int(time.time())
    others = {
        "anonymous": None,
        "customer": issuer.token("u1", "customer"),
        "organizer": issuer.token("u1", "organizer"),
        "forged admin": TestTokenIssuer(
            issuer=issuer.issuer, audience=issuer.audience, kid=issuer.kid
        ).token("u1", "admin"),
        "expired admin": issuer.token("u1", "admin", iat=now - 120, exp=now - 60),
        "garbage": "not-a-token",
    }
    # A token that does not verify counts as none: the status code stays the readiness.
    assert {who: ready(token) for who, token in others.items()} == {
        who: (200, {"status": "ok"}) for who in others
    }


@pytest.mark.django_db
def test_not_ready_is_503_with_the_status_alone_unless_admin(
    settings: Any, issuer: TestTokenIssuer
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        settings.NATS_URL = f"nats://127.0.0.1:{closed.getsockname()[1]}"
    assert ready() == (503, {"status": "unavailable"})
    status, body = ready(issuer.token("u1", "admin"))
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["bus"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_ready_schema_says_the_details_are_optional() -> None:
    schema = APIClient().get("/api/schema/?format=json").json()
    responses = schema["paths"]["/health/ready/"]["get"]["responses"]
    for status in ("200", "503"):
        ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
        component = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        assert component["required"] == ["status"]
        assert set(component["properties"]) == {"status", "service", "checks"}
        status_ref = component["properties"]["status"]["$ref"]
        status_enum = schema["components"]["schemas"][status_ref.rsplit("/", 1)[-1]]
        assert status_enum["enum"] == ["ok", "unavailable"]


@pytest.mark.django_db
def test_unknown_path_is_problem_json() -> None:
    response = APIClient().get("/no/such/path")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 404


@pytest.mark.django_db
def test_whoami_needs_a_token_and_echoes_the_principal() -> None:
    from servicekit.testing import TestTokenIssuer

    client = APIClient()
    response = client.get("/api/whoami")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    forged = TestTokenIssuer(issuer="turnstile-users", audience="turnstile").token("u1")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert client.get("/api/whoami/").status_code == 401  # key not published by this service


@pytest.mark.django_db
def test_statements_have_a_time_limit() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == ("30s",)


@pytest.mark.django_db
def test_idle_transactions_end_and_vanished_clients_are_noticed() -> None:
    """An idle transaction (a paused client holding an event's lock) ends after a minute;
    the server probes a TCP connection, so a client whose host died releases its locks.
    (The tests reach PostgreSQL on a Unix socket, where keepalives read as 0: for those the
    options the connections carry are checked.)"""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('idle_in_transaction_session_timeout')")
        assert cursor.fetchone() == ("1min",)
    options = connection.settings_dict["OPTIONS"]["options"].split()
    assert "tcp_keepalives_idle=30" in options
    assert "tcp_keepalives_count=3" in options


@pytest.mark.django_db
def test_a_statement_over_its_time_limit_is_a_503_problem() -> None:
    from django.db import OperationalError, connection

    from servicekit.problems import exception_handler

    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 50")
        with pytest.raises(OperationalError) as raised:
            cursor.execute("SELECT pg_sleep(1)")
    response = exception_handler(raised.value, {})
    assert response is not None
    assert response.status_code == 503
    assert response.data["type"] == "urn:problem:busy"
