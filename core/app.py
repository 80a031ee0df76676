"""The composition root: `create_app()` wires config, extensions, domains, errors and commands.

The only module of `core` that imports the domain packages.
"""

from __future__ import annotations

import logging
import os
from typing import Any
from zoneinfo import ZoneInfo

import click
from flask import Flask, jsonify, request
from flask.cli import AppGroup

from core import bounds, errors
from core.api import api, openapi_document
from core.bounds import BoundedIntConverter
from core.config import load_config
from core.db import db
from core.extensions import csrf, login_manager, migrate
from core.health import health
from core.jobs import JOBS, build_scheduler, run_job

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERSION = "0.1.0"


def create_app(env: str | None = None, overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=os.path.join(ROOT, "templates"),
        static_folder=os.path.join(ROOT, "static"),
        instance_path=os.path.join(ROOT, "instance"),
    )
    app.url_map.converters["int"] = BoundedIntConverter  # before any route is added
    app.config.from_mapping(load_config(env, overrides))
    app.json.ensure_ascii = False
    os.makedirs(app.config["INSTANCE_DIR"], exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"), compare_type=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "community.login"
    login_manager.login_message = "请先登录"
    login_manager.login_message_category = "info"
    errors.init_app(app)

    _register_domains(app)
    _register_templates(app)
    _register_cli(app)
    _maybe_start_scheduler(app)
    return app


def _register_domains(app: Flask) -> None:
    from community import accounts
    from community import api as community_api  # noqa: F401  (routes register on import)
    from community import jobs as community_jobs  # noqa: F401
    from community.balances import register_balance_reader
    from community.cli import admin_cli
    from community.views import bp as community_pages
    from core import notify  # noqa: F401  (the outbox and its delivery job)
    from exchange import api as exchange_api  # noqa: F401
    from exchange import jobs as exchange_jobs  # noqa: F401
    from exchange.views import bp as exchange_pages
    from points import api as points_api  # noqa: F401
    from points import jobs as points_jobs  # noqa: F401
    from points import ledger
    from points.cli import archive_cli
    from points.views import bp as points_pages
    from volunteer import api as volunteer_api  # noqa: F401
    from volunteer import jobs as volunteer_jobs  # noqa: F401
    from volunteer.views import bp as volunteer_pages

    login_manager.user_loader(accounts.user_for_session)
    register_balance_reader(lambda user: ledger.balance(db.session, user.id))

    @login_manager.unauthorized_handler
    def _unauthorized() -> Any:
        from flask import flash, redirect, url_for

        flash("请先登录", "info")
        return redirect(url_for("community.login", next=request.full_path.rstrip("?")))

    csrf.exempt(api)  # the API checks CSRF itself when a page session (not a token) is used
    app.register_blueprint(api)
    app.register_blueprint(health)
    app.register_blueprint(community_pages)
    app.register_blueprint(points_pages)
    app.register_blueprint(exchange_pages)
    app.register_blueprint(volunteer_pages)
    app.cli.add_command(admin_cli)
    app.cli.add_command(archive_cli)

    @app.get("/api/openapi.json")
    def openapi_json() -> Any:
        return jsonify(openapi_document("moralcredit 志愿积分·道德超市 API", VERSION))


def _register_templates(app: Flask) -> None:
    zone = ZoneInfo(app.config["TIMEZONE"])

    @app.template_filter("local")
    def local_time(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return value.astimezone(zone).strftime(fmt) if value else ""

    @app.context_processor
    def globals_() -> dict[str, Any]:
        return {"app_version": VERSION, "bounds": bounds}


def _register_cli(app: Flask) -> None:
    demo = AppGroup("demo", help="演示数据 (demo data)")

    @demo.command("seed")
    @click.option("--force", is_flag=True, help="seed even if the database already holds people")
    def seed(force: bool) -> None:
        """Fill an empty database with a realistic demo county."""
        from community import demo as community_demo
        from exchange import demo as exchange_demo
        from points import demo as points_demo
        from volunteer import demo as volunteer_demo

        result = community_demo.seed(force=force)
        click.echo(result)
        if "skipped" not in result:
            click.echo(points_demo.seed())
            click.echo(volunteer_demo.seed())
            click.echo(exchange_demo.seed())

    jobs = AppGroup("jobs", help="定时任务 (scheduled jobs)")

    @jobs.command("run")
    @click.argument("name")
    def run(name: str) -> None:
        """Run one job now."""
        if name not in JOBS:
            raise click.ClickException(f"unknown job {name!r}; one of: {', '.join(sorted(JOBS))}")
        click.echo(run_job(name) or "done")

    @jobs.command("list")
    def list_jobs() -> None:
        """List the jobs and their schedules."""
        for job in sorted(JOBS.values(), key=lambda j: j.name):
            click.echo(f"{job.name:28} {job.trigger}  {job.description}")

    scheduler = AppGroup("scheduler", help="调度器 (scheduler)")

    @scheduler.command("run")
    def scheduler_run() -> None:
        """Run the scheduled jobs in the foreground (one such process per deployment is enough)."""
        click.echo(f"scheduler: {len(JOBS)} jobs, time zone {app.config['TIMEZONE']}")
        build_scheduler(app, blocking=True).start()

    ledger_cli = AppGroup("ledger", help="积分与库存账本 (ledgers)")

    @ledger_cli.command("check")
    def ledger_check() -> None:
        """Every invariant of points, stock and archives; exit status 1 naming each break."""
        from exchange import inventory
        from points import archive, ledger

        problems = [f"ledger: {p}" for p in ledger.invariant_problems(db.session)]
        problems += [f"stock: {p}" for p in inventory.invariant_problems(db.session)]
        residents = archive.residents_with_entries(db.session)
        for user_id in residents:
            result = archive.verify(db.session, user_id)
            problems += [f"archive of resident {user_id}: {p}" for p in result.problems]
        for problem in problems:
            click.echo(problem)
        click.echo(f"checked the ledgers and {len(residents)} archives: {len(problems)} problems")
        if problems:
            raise SystemExit(1)

    app.cli.add_command(demo)
    app.cli.add_command(jobs)
    app.cli.add_command(scheduler)
    app.cli.add_command(ledger_cli)


def _maybe_start_scheduler(app: Flask) -> None:
    # Only in `flask run` (and in the reloader's child), never in every gunicorn worker.
    if app.config["SCHEDULER"] != "on" or app.testing or os.environ.get("FLASK_RUN_FROM_CLI") != "true":
        return
    if app.debug and os.environ.get("WERKZEUG_RUN_MAIN") != "true":
        return
    context = click.get_current_context(silent=True)
    if context is None or context.info_name != "run":
        return
    build_scheduler(app, blocking=False).start()
