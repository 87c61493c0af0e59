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
