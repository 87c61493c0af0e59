from typing import Any

import pytest
from rest_framework.test import APIClient


@pytest.mark.django_db
def test_schema_and_docs_are_served() -> None:
    client = APIClient()
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    body = schema.json()
    assert body["openapi"].startswith("3.")
    assert "/api/users/register/" in body["paths"]  # both spellings are served
    assert body["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


def _schema() -> dict[str, Any]:
    response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _resolve(schema: dict[str, Any], ref: str) -> dict[str, Any]:
    component: dict[str, Any] = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return component


@pytest.mark.django_db
def test_lists_are_documented_as_the_paginated_envelope() -> None:
    schema = _schema()
    listing = schema["paths"]["/api/users/"]["get"]
    ok = listing["responses"]["200"]["content"]["application/json"]["schema"]
    envelope = _resolve(schema, ok["$ref"])
    assert set(envelope["properties"]) == {"count", "next", "previous", "results"}
    assert envelope["properties"]["results"]["type"] == "array"
    page_size = next(p for p in listing["parameters"] if p["name"] == "page_size")
    assert (page_size["schema"]["minimum"], page_size["schema"]["maximum"]) == (1, 100)


@pytest.mark.django_db
def test_every_error_status_is_a_documented_problem() -> None:
    schema = _schema()
    login = schema["paths"]["/api/users/login/"]["post"]["responses"]
    detail = schema["paths"]["/api/users/{id}/"]["get"]["responses"]
    listing = schema["paths"]["/api/users/"]["get"]["responses"]
    assert {"400", "401", "413", "415", "429", "503"} <= set(login)
    assert {"401", "404", "503"} <= set(detail)
    assert {"400", "401", "403", "404", "414"} <= set(listing)
    for responses in (login, detail, listing):
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                content = response["content"]["application/problem+json"]["schema"]
                assert content == {"$ref": "#/components/schemas/Problem"}
    problem = schema["components"]["schemas"]["Problem"]
    assert problem["required"] == ["type", "title", "status", "detail"]


@pytest.mark.django_db
def test_links_chain_login_to_the_calls_that_use_its_answer() -> None:
    links = _schema()["paths"]["/api/users/login/"]["post"]["responses"]["200"]["links"]
    assert links["GetSelf"]["operationId"] == "api_users_retrieve"
    assert links["GetSelf"]["parameters"] == {"id": "$response.body#/user/id"}
    assert links["Refresh"]["requestBody"] == {"refresh": "$response.body#/refresh"}


@pytest.mark.django_db
def test_docs_page_loads_its_scripts_from_the_service() -> None:
    page = APIClient().get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "https://" not in html


def test_a_url_past_the_limit_is_a_414_problem(settings: Any) -> None:
    response = APIClient().get("/api/users/", {"search": "x" * settings.MAX_URL_LENGTH})
    assert response.status_code == 414
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == "urn:problem:uri-too-long"


@pytest.mark.django_db
def test_text_that_refuses_control_characters_says_so_in_the_schema() -> None:
    import re

    schema = _schema()
    name = schema["components"]["schemas"]["RegisterApiInputRequest"]["properties"]["name"]
    assert re.fullmatch(name["pattern"], "Ann Example")
    for bad in ("Ann\nBcc: x@example.com", "Ann\r", "Ann\x00", "Ann\u2028"):
        assert re.fullmatch(name["pattern"], bad) is None
