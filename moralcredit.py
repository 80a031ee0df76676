"""The composition root: `create_app()` is a bare app from `core` with every domain wired in.

This is the one place that knows all the domains and the one place where their order lives: the
dependency order of STYLE.md, community → points → volunteer, exchange → stats (which reads them
all). Each domain's `init_app` registers what it owns (pages, API routes, jobs, Chinese messages,
commands) and may use a hook of a domain wired in before it: points gives community the balance
reader; points, volunteer and exchange add their demo data to community's `flask demo seed`;
exchange adds its stock invariants to points' `flask ledger check`. The hooks live on the app
(`app.extensions`), never in a module, so two apps in one process share nothing, and importing a
module registers nothing.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

import citydemo
import community
import exchange
import points
import stats
import volunteer
from core.app import create_bare_app
from core.jobs import maybe_start_scheduler


def create_app(env: str | None = None, overrides: dict[str, Any] | None = None) -> Flask:
    app = create_bare_app(env, overrides)
    community.init_app(app)
    points.init_app(app)
    volunteer.init_app(app)
    exchange.init_app(app)
    stats.init_app(app)  # reads every domain above, so it comes after them all
    citydemo.init_app(app)  # bulk demo data: fills every domain's tables, so it comes after them
    maybe_start_scheduler(app)  # last: it schedules the jobs the domains registered
    return app
