"""Explicit wiring: `core` knows no domain, importing a module registers nothing, and each app gets
every domain's routes, jobs and messages exactly once (`moralcredit.create_app` holds the order)."""

from __future__ import annotations

import ast
import importlib
import json
import os
import pkgutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from flask import Flask

import core
from core import api, errors, jobs
from core.app import create_bare_app
from moralcredit import create_app

ROOT = Path(__file__).resolve().parent.parent
DOMAINS = ("community", "points", "volunteer", "exchange", "stats")
OUTSIDE_CORE = {*DOMAINS, "citydemo", "moralcredit", "wsgi"}
DB = {"SQLALCHEMY_DATABASE_URI": "sqlite://"}  # none of these tests touches the database
JOBS = {
    "deliver-notifications",
    "prune-login-attempts",
    "post-deeds",
    "verify-archives",
    "apply-expiry",
    "close-missed-checkouts",
    "remind-volunteers",
    "low-stock",
    "stats-refresh",
    "stats-rebuild",
    "monthly-report",
}


def _imported_packages(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_of_core_imports_a_domain():
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_packages(path) & OUTSIDE_CORE)
        for path in sorted((ROOT / "core").rglob("*.py"))
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_a_bare_app_loads_no_domain_module():
    script = (
        "import json, pkgutil, importlib, sys, core\n"
        "for module in pkgutil.walk_packages(core.__path__, 'core.'):\n"
        "    importlib.import_module(module.name)\n"
        "from core.app import create_bare_app\n"
        "create_bare_app('testing', {'SQLALCHEMY_DATABASE_URI': 'sqlite://'})\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(OUTSIDE_CORE)!r})))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def _endpoints(app: Flask) -> list[str]:
    return [rule.endpoint for rule in app.url_map.iter_rules()]


def test_importing_every_domain_module_changes_no_app():
    core_messages = dict(errors.MESSAGES)
    for domain in (*DOMAINS, "citydemo"):
        package = importlib.import_module(domain)
        for module in pkgutil.walk_packages(package.__path__, f"{domain}."):
            importlib.import_module(module.name)

    bare = create_bare_app("testing", DB)
    assert sorted(_endpoints(bare)) == ["health.core_healthz", "openapi_json", "static"]
    assert [route.rule for route in api.routes_of(bare)] == ["/healthz"]
    assert set(jobs.jobs_of(bare)) == {"deliver-notifications"}
    assert core_messages == errors.MESSAGES == bare.extensions[errors.EXTENSION]
    assert bare.login_manager.login_view is None
    assert bare.test_client().get("/healthz").get_json() == {"status": "ok", "db": "ok"}
    assert bare.test_client().get("/healthz", headers={"Authorization": "Bearer x.y"}).status_code == 401
    with bare.app_context():
        assert errors.message("insufficient_points") == errors.MESSAGES["bad_request"]


def test_two_apps_in_one_process_each_have_every_route_job_and_message_once():
    first = create_app("testing", DB)
    first_rules = sorted((r.rule, sorted(r.methods), r.endpoint) for r in first.url_map.iter_rules())
    second = create_app("testing", DB)

    for app in (first, second):
        assert [e for e, n in Counter(_endpoints(app)).items() if n > 1] == []
        declared = [(route.method, route.rule) for route in api.routes_of(app)]
        assert [r for r, n in Counter(declared).items() if n > 1] == []
        document = app.test_client().get("/api/openapi.json").get_json()
        listed = {(m.upper(), p) for p, operations in document["paths"].items() for m in operations}
        served = {(m, r.replace("<int:", "{").replace("<", "{").replace(">", "}")) for m, r in declared}
        assert listed == served and len(declared) > 60
        assert set(jobs.jobs_of(app)) == JOBS
        assert {"admin", "demo", "jobs", "scheduler", "archive", "ledger", "db"} <= set(app.cli.list_commands(None))
        with app.app_context():
            assert errors.message("insufficient_points") == "积分不足"
            assert errors.message("out_of_stock") == "库存不足"

    assert sorted((r.rule, sorted(r.methods), r.endpoint) for r in first.url_map.iter_rules()) == first_rules
    assert sorted((r.rule, sorted(r.methods), r.endpoint) for r in second.url_map.iter_rules()) == first_rules
    assert api.routes_of(first) == api.routes_of(second)
    assert dict(jobs.jobs_of(first)) == dict(jobs.jobs_of(second))


def test_routes_and_jobs_reach_only_the_app_they_are_registered_on_and_only_once():
    extra_routes, extra_jobs = api.Routes(), jobs.JobSet()

    @extra_routes.route("/wiring-probe", auth=False)
    def probe(user):
        """A route only one app has."""
        return {"ok": True}

    @extra_jobs.job("wiring-probe")
    def probe_job(*, now):
        return "ran"

    wired, other = create_bare_app("testing", DB), create_bare_app("testing", DB)
    api.register(wired, extra_routes)
    jobs.register(wired, extra_jobs)
    assert wired.test_client().get("/api/v1/wiring-probe").get_json() == {"ok": True}
    assert other.test_client().get("/api/v1/wiring-probe").status_code == 404
    assert "/api/v1/wiring-probe" in wired.test_client().get("/api/openapi.json").get_json()["paths"]
    assert "wiring-probe" in jobs.jobs_of(wired) and "wiring-probe" not in jobs.jobs_of(other)

    with pytest.raises(RuntimeError, match="already registered"):
        api.register(wired, extra_routes)
    with pytest.raises(RuntimeError, match="already registered"):
        jobs.register(wired, extra_jobs)
    assert _endpoints(wired).count("api.tests_probe") == 1


def test_a_domain_wired_before_what_it_builds_on_is_refused():
    import exchange

    app = create_bare_app("testing", DB)
    with pytest.raises(RuntimeError, match=r"points\.init_app"):
        exchange.init_app(app)


def test_core_says_where_the_composition_order_lives():
    assert "moralcredit.create_app" in (core.__doc__ or "")


def test_a_code_has_one_title_and_a_domain_cannot_retitle_it():
    """Titles come from one registry per app; giving a known code another title is refused at
    start-up, so no error is titled by whichever domain happened to be wired last."""
    app = create_bare_app("testing", DB)
    errors.register_messages(app, {"token_invalid": errors.MESSAGES["token_invalid"]})  # the same text: fine
    with pytest.raises(ValueError, match="token_invalid"):
        errors.register_messages(app, {"token_invalid": "二维码无效"})


def test_a_bad_venue_code_and_a_bad_sign_in_token_keep_their_own_titles():
    app = create_app("testing", DB)
    client = app.test_client()
    bearer = client.get("/api/v1/me", headers={"Authorization": "Bearer nonsense"})
    assert bearer.status_code == 401 and bearer.get_json()["title"] == "登录凭证无效"
    with app.app_context():
        from volunteer import tokens

        venue = tokens.refused("token_invalid")
    assert (venue.status, venue.code, venue.title) == (422, "token_invalid", "二维码无效")
