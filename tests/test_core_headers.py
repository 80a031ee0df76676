"""Every response carries the security headers: each GET route of the URL map for several callers,
each API route for every method, errors and static files; HSTS only over HTTPS. Pages carry no
inline script, event handler or style attribute, so the policy can forbid them."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.api import routes_of
from core.headers import CONTENT_SECURITY_POLICY
from tests import factories as f
from tests.authz import build_world, csrf_token, sign_in_page
from tests.markup import inline_code

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def assert_secured(response, where: str) -> None:
    headers = response.headers
    csp = headers.get("Content-Security-Policy", "")
    missing = [
        name
        for name, ok in {
            "CSP": csp == CONTENT_SECURITY_POLICY,
            "nosniff": headers.get("X-Content-Type-Options") == "nosniff",
            "Referrer-Policy": headers.get("Referrer-Policy") in {"same-origin", "strict-origin-when-cross-origin"},
            "Permissions-Policy": "camera=(self)" in headers.get("Permissions-Policy", ""),
        }.items()
        if not ok
    ]
    response.close()  # a static file's response holds the file open
    assert not missing, f"{where} ({response.status_code}) lacks {missing}"
    assert "Strict-Transport-Security" not in headers, f"{where}: HSTS over plain HTTP"


def test_the_policy_forbids_inline_script_and_framing():
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY and "nonce" not in CONTENT_SECURITY_POLICY
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert directives["base-uri"] == "'self'" and directives["form-action"] == "'self'"


def _url(rule, world) -> str:
    values = {}
    for name in rule.arguments:
        converter = type(rule._converters[name]).__name__
        if "Int" in converter:
            values[name] = world.stores["s1"].id if "store" in name else 1
        elif name == "filename":
            values[name] = "js/page.js"
        else:
            values[name] = "4301"
    return rule.build(values, append_unknown=False)[1]


def _get_rules(app):
    return sorted(
        (r for r in app.url_map.iter_rules() if "GET" in r.methods),
        key=lambda r: r.rule,
    )


@pytest.mark.parametrize("actor", ["anonymous", "resident", "organizer", "clerk", "admin"])
def test_every_get_route_carries_the_headers_and_no_inline_code(app, actor):
    world = build_world()
    who = world.users.get(actor)
    client = app.test_client()
    headers = {}
    if who is not None:
        sign_in_page(client, who)
        headers = f.bearer(who)
    ok_pages = 0
    inline = {}
    for rule in _get_rules(app):
        url = _url(rule, world)
        response = client.get(url, headers=headers if rule.rule.startswith("/api/") else {})
        assert_secured(response, f"GET {url} as {actor}")
        if response.status_code == 200 and response.mimetype == "text/html":
            ok_pages += 1
            if found := inline_code(response.get_data(as_text=True)):
                inline[url] = found
    assert not inline, f"pages with inline code: {inline}"
    assert ok_pages >= (3 if actor == "anonymous" else 8), "the walk reached too few pages to mean anything"


def test_every_api_route_answers_with_the_headers_whatever_the_method(app):
    world = build_world()
    client = app.test_client()
    rules = {rule.rule: rule for rule in app.url_map.iter_rules()}
    for route in routes_of(app):
        url = _url(rules[route.rule], world)
        for headers in ({}, {"Authorization": "Bearer nonsense"}):
            response = client.open(url, method=route.method, json={}, headers=headers)
            assert_secured(response, f"{route.method} {url}")
            assert response.status_code < 500


def test_errors_static_files_and_unsafe_methods_carry_them_too(app):
    world = build_world()
    client = app.test_client()
    assert_secured(client.get("/no/such/page"), "a missing page")
    assert_secured(client.get("/api/v1/no/such/thing"), "a missing API path")
    assert_secured(client.get("/static/js/page.js"), "a static file")
    assert_secured(client.get("/api/openapi.json"), "the OpenAPI document")
    assert_secured(client.get("/healthz"), "the health check")
    sign_in_page(client, world.users["admin"])
    assert_secured(client.post("/logout", data={"csrf_token": csrf_token(client)}), "a redirect after a form")
    assert_secured(client.post("/logout", data={}), "a form without its CSRF token")


def test_strict_transport_security_only_when_the_request_came_over_https(app):
    client = app.test_client()
    assert "Strict-Transport-Security" not in client.get("/privacy").headers
    secure = client.get("/privacy", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")
    assert secure.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    api = client.get("/api/v1/activities", base_url="https://localhost")
    assert api.headers["Strict-Transport-Security"].startswith("max-age=")


def test_no_template_holds_inline_script_handlers_or_style_attributes():
    offenders = {}
    for path in sorted(TEMPLATES.rglob("*.html")):
        if found := inline_code(path.read_text(encoding="utf-8")):
            offenders[str(path.relative_to(TEMPLATES))] = found
    assert not offenders, offenders
