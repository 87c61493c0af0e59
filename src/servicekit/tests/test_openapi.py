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
