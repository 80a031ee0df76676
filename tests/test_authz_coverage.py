"""No route without an authorization case: every API route and page appears in some matrix."""

from __future__ import annotations

import importlib
from pathlib import Path

from tests.authz import Case, _value, build_world

IGNORED_ENDPOINTS = {"static", "openapi_json"}


def all_cases() -> list[Case]:
    cases: list[Case] = []
    for path in sorted(Path(__file__).parent.glob("test_*_authz.py")):
        module = importlib.import_module(f"tests.{path.stem}")
        cases.extend(module.CASES)
    return cases


def test_every_route_has_an_authorization_case(app):
    world = build_world()
    adapter = app.url_map.bind("localhost")
    covered = set()
    for case in all_cases():
        endpoint, _ = adapter.match(_value(case.path, world).split("?")[0], method=case.method)
        covered.add((endpoint, case.method))
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in IGNORED_ENDPOINTS:
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if (rule.endpoint, method) not in covered:
                missing.append(f"{method} {rule.rule}")
    assert not missing, f"routes without an authorization case: {missing}"
