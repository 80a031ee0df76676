"""People and places: regions (市 › 县 › 乡镇 › 村/社区 › 网格), departments, households, residents
and the roles they hold. Knows nothing of points, activities or stores (those build on it).

`init_app(app)` wires the domain into an app; the composition root (`moralcredit.create_app`) calls
it first, since every other domain builds on it. Importing a module of the domain changes no app.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, flash, redirect, request, url_for

import core.api
import core.jobs
from core.errors import register_messages


def init_app(app: Flask) -> None:
    """Pages, API routes, sign-in (page session and API token), jobs, Chinese messages, commands."""
    # Imported here: `import community.models` need not load every page and route of the domain.
    from community import accounts, cli, jobs, messages, security_api, security_pages, user_pages, views
    from community.api import api

    register_messages(app, messages.MESSAGES)
    app.register_blueprint(views.bp)
    app.register_blueprint(user_pages.bp)
    app.register_blueprint(security_pages.bp)
    core.api.register(app, api)
    core.api.register(app, security_api.api)
    core.api.token_user_loader(app, accounts.user_for_token)
    core.jobs.register(app, jobs.jobs)
    cli.init_app(app)

    app.url_value_preprocessor(_allow_large_imports)
    app.before_request(security_pages.enrolment_gate)

    app.login_manager.user_loader(accounts.user_for_session)
    app.login_manager.login_view = "community.login"
    app.login_manager.unauthorized_handler(_send_to_sign_in)


def _send_to_sign_in() -> Any:
    flash("请先登录", "info")
    return redirect(url_for("community.login", next=request.full_path.rstrip("?")))


# Where a spreadsheet is uploaded, the request may be as large as IMPORT_MAX_BYTES. Set before any
# before-request hook reads the form (the page's CSRF check does): url value preprocessors run first.
IMPORT_ENDPOINTS = {"api.community_post_import", "community.admin_imports"}


def _allow_large_imports(endpoint: str | None, values: dict[str, Any] | None) -> None:
    if endpoint in IMPORT_ENDPOINTS and request.method == "POST":
        request.max_content_length = current_app.config["IMPORT_MAX_BYTES"]
