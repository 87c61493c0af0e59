import pytest
from rest_framework.test import APIClient


@pytest.mark.django_db
def test_live_answers_without_a_token() -> None:
    response = APIClient().get("/health/live")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.django_db
def test_ready_checks_database_and_bus() -> None:
    response = APIClient().get("/health/ready/")
    body = response.json()
    assert response.status_code == 200, body
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["bus"]["ok"] is True


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
