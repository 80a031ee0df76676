"""API plumbing: the OpenAPI document, problem+json for every error, health, and the contract's paths."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

CONTRACT = {
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/token"),
    ("get", "/api/v1/me"),
    ("get", "/api/v1/me/code"),
    ("get", "/api/v1/me/code.png"),
    ("post", "/api/v1/roles"),
    ("get", "/api/v1/regions"),
    ("post", "/api/v1/regions"),
    ("get", "/api/v1/departments"),
    ("post", "/api/v1/departments"),
    ("get", "/healthz"),
}


def test_the_openapi_document_validates_and_holds_the_contract(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    validate(document)
    operations = {(m, p) for p, ops in document["paths"].items() for m in ops}
    assert operations >= CONTRACT
    register = document["paths"]["/api/v1/auth/register"]["post"]
    body = register["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/Register"}
    assert set(document["components"]["schemas"]["Register"]["required"]) == {
        "phone",
        "name",
        "password",
        "region_code",
    }
    assert "422" in register["responses"] and "201" in register["responses"]


def test_health_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok", "db": "ok"}


def test_health_is_503_when_the_database_is_unreachable(tmp_path):
    from moralcredit import create_app

    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": "postgresql://nobody@127.0.0.1:1/none"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503 and response.get_json()["db"] == "unreachable"


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("get", "/api/v1/no-such-thing", 404, "not_found"),
        ("delete", "/api/v1/me", 405, "method_not_allowed"),
        ("delete", "/api/v1/roles/abc", 404, "not_found"),
    ],
)
def test_routing_errors_are_problem_documents(client, method, path, status, code):
    response = client.open(path, method=method.upper())
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["code"] == code and body["status"] == status and body["title"]


def test_pages_get_friendly_chinese_error_pages(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "找不到该内容" in response.get_data(as_text=True)


def test_an_unexpected_error_is_a_500_problem_without_internals(app, client, monkeypatch):
    from community import accounts

    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(accounts, "personal_code", boom)
    from tests import factories as f

    f.region("4301", level="county")
    response = client.get("/api/v1/me/code", headers=f.bearer(f.user("4301")))
    assert response.status_code == 500 and response.get_json()["code"] == "internal_error"
    assert "secret" not in response.get_data(as_text=True)
