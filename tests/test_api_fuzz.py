"""Hostile clients against the OpenAPI document: schemathesis sends generated requests, valid and
invalid, with a bearer token of each role; no 5xx, no status the document does not list, no body
that breaks its schema. A short run here, a long one in bench/fuzz_api.py. Below it, one focused
test for each break the fuzzer found."""

from __future__ import annotations

from core.bounds import INT_MAX
from core.db import db
from tests import factories as f
from tests.authz import build_world
from tests.fuzz import fuzz_world, run

EXAMPLES = 8  # per operation and generation mode: about 1400 requests, a minute or less per database


def test_generated_requests_from_every_role_get_documented_answers(app):
    tokens, known = fuzz_world()
    db.session.remove()
    report = run(app, tokens, known, examples=EXAMPLES, seed=13)
    print(f"schemathesis: {report.cases} cases over {len(report.by_operation)} operations, {dict(report.statuses)}")
    assert not report.failures, "\n".join(report.lines())
    assert report.cases >= 500 and len(report.by_operation) >= 80
    assert sum(n for status, n in report.statuses.items() if status < 300) >= 50, "hardly any request got through"
    assert not any(status >= 500 for status in report.statuses)


def _document(client) -> dict:
    return client.get("/api/openapi.json").get_json()


def test_an_id_beyond_the_column_is_404_even_where_the_path_has_another_method(client):
    # GET and PATCH share /activities/<id>: a refused id used to answer 405 (PATCH "matched").
    for path in ("/api/v1/activities/4715676941197531773", "/api/v1/activities/2147483648"):
        response = client.get(path)
        assert response.status_code == 404 and response.mimetype == "application/problem+json"
    assert client.get(f"/api/v1/activities/{INT_MAX}").status_code == 404


def test_path_ids_are_documented_with_their_range_and_a_404(client):
    operation = _document(client)["paths"]["/api/v1/activities/{activity_id}"]["get"]
    (parameter,) = operation["parameters"]
    assert parameter["schema"] == {"type": "integer", "minimum": 1, "maximum": INT_MAX}
    assert "404" in operation["responses"]


def test_every_operation_documents_401_and_bodies_document_400_413_415_422(client):
    for path, operations in _document(client)["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert "401" in codes, f"{method} {path}: a bad bearer token is checked everywhere"
            if "requestBody" in operation:
                assert {"400", "413", "415", "422"} <= codes, f"{method} {path}"


def test_a_problem_may_carry_extension_members_and_always_has_the_five(client):
    problem = _document(client)["components"]["schemas"]["Problem"]
    assert problem["additionalProperties"] is True
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    # a failed sign-in carries remaining_attempts, which the document used to forbid
    answer = client.post("/api/v1/auth/token", json={"phone": "13900000000", "password": "wrong"})
    assert answer.status_code == 401 and answer.mimetype == "application/problem+json"


def test_a_nul_in_an_api_query_is_a_422_naming_the_field(client, app):
    world = build_world()
    response = client.get("/api/v1/users?q=%00x", headers=f.bearer(world.users["admin"]))
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert response.get_json()["errors"] == {"q": ["内容不能包含控制字符"]}
    page = client.get("/activities?q=%00")
    assert page.status_code == 400 and "提交的内容包含无效字符" in page.get_data(as_text=True)


def test_an_unknown_region_in_a_list_filter_is_a_documented_404(client, app):
    world = build_world()
    paths = _document(client)["paths"]
    for path in ("/api/v1/deed-types", "/api/v1/reports"):
        response = client.get(f"{path}?region_code=9999", headers=f.bearer(world.users["admin"]))
        assert response.status_code == 404, path
        assert "404" in paths[path]["get"]["responses"], path


def test_a_large_adjustment_answers_a_documented_202(client, app):
    world = build_world()
    operation = _document(client)["paths"]["/api/v1/residents/{resident_id}/adjustments"]["post"]
    assert operation["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/Adjustment")
    answer = client.post(
        f"/api/v1/residents/{world.users['resident'].id}/adjustments",
        json={"points": app.config["ADJUSTMENT_REVIEW_ABOVE"] + 1, "reason": "抗洪表彰"},
        headers={**f.bearer(world.users["admin"]), "Idempotency-Key": "fuzz-202"},
    )
    assert answer.status_code == 202 and answer.get_json()["status"] == "pending"


def test_the_statistics_export_documents_both_of_its_file_types(client):
    content = _document(client)["paths"]["/api/v1/stats/export"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
