"""A bare app: config, extensions, error handlers, the API toolkit, jobs, health and templates.

It knows no domain: the composition root (`moralcredit.create_app`, beside `wsgi.py`) takes this app
and calls each domain's `init_app` in dependency order. Extensions are created per app here, so two
apps in one process share no sign-in hook, CSRF exemption or job.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from core import api, bounds, dbtools, errors, headers, health, jobs, limits, notify
from core.bounds import BoundedIntConverter
from core.config import load_config
from core.db import db

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERSION = "0.1.0"


def create_bare_app(env: str | None = None, overrides: dict[str, Any] | None = None) -> Flask:
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
    Migrate(app, db, directory=os.path.join(ROOT, "migrations"), compare_type=True)
    dbtools.init_app(app)  # `flask db`: Migrate's commands with copy, backup and restore
    CSRFProtect(app)
    # `app.login_manager`: until the people domain says how a session finds its user, none does.
    LoginManager(app).user_loader(lambda user_id: None)
    errors.init_app(app)
    headers.init_app(app)
    limits.init_app(app)
    api.init_app(app, title="moralcredit 志愿积分·道德超市 API", version=VERSION)
    api.register(app, health.api)
    jobs.init_app(app)
    notify.init_app(app)
    _register_templates(app)
    app.wsgi_app = TrustedProxies(app, app.wsgi_app)
    return app


class TrustedProxies:
    """Werkzeug's ProxyFix for `TRUSTED_PROXIES` proxies, read on each request: the client address
    and scheme come from the X-Forwarded-For/-Proto that many proxies added (the rightmost ones);
    with 0, those headers are ignored and the connection's address and scheme stand."""

    def __init__(self, app: Flask, wsgi_app: Any) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self._fixes: dict[int, ProxyFix] = {}

    def __call__(self, environ: dict, start_response: Any) -> Any:
        count = self.app.config["TRUSTED_PROXIES"]
        if not count:
            return self.wsgi_app(environ, start_response)
        if count not in self._fixes:
            self._fixes[count] = ProxyFix(self.wsgi_app, x_for=count, x_proto=count)
        return self._fixes[count](environ, start_response)


def _register_templates(app: Flask) -> None:
    zone = ZoneInfo(app.config["TIMEZONE"])

    @app.template_filter("local")
    def local_time(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return value.astimezone(zone).strftime(fmt) if value else ""

    @app.template_filter("when")
    def when(value: Any) -> str:
        """A moment for a list: "12月30日 09:00", with the year when it is not this year's, so a
        list that crosses a new year never reads "1月3日" for a date a year away."""
        if not value:
            return ""
        local = value.astimezone(zone)
        day = f"{local.month}月{local.day}日 {local:%H:%M}"
        return day if local.year == datetime.now(zone).year else f"{local.year}年{day}"

    @app.template_global("time_span")
    def time_span(start: Any, end: Any) -> str:
        """From start to end: the end's time alone on the same local day, else its date too."""
        if not start or not end:
            return when(start or end)
        same_day = start.astimezone(zone).date() == end.astimezone(zone).date()
        return f"{when(start)}–{end.astimezone(zone):%H:%M}" if same_day else f"{when(start)} – {when(end)}"

    @app.context_processor
    def globals_() -> dict[str, Any]:
        return {"app_version": VERSION, "bounds": bounds}
