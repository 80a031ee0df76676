"""Statistics and reports (统计与通报): figures, rankings, integrity flags, the monthly report and
the dashboards. Reads every domain's tables and writes only its own (`stats_*`): rollups that the
`stats-refresh` job keeps up to date, and the reports, immutable once written.

`init_app(app)` wires the domain into an app, last (see `moralcredit.create_app`). Importing a
module of the domain changes no app.
"""

from __future__ import annotations

from flask import Flask

import core.api
import core.jobs
from core.errors import register_messages


def init_app(app: Flask) -> None:
    """API routes, pages, jobs and Chinese messages."""
    # Imported here: `import stats.queries` need not load every page and route of the domain.
    from points.cli import add_ledger_check
    from stats import jobs, messages, models, refresh, views  # noqa: F401  (models: the tables join the metadata)
    from stats.api import api

    app.config.setdefault("STATS_MIN_GROUP", 5)
    register_messages(app, messages.MESSAGES)
    app.register_blueprint(views.bp)
    core.api.register(app, api)
    core.jobs.register(app, jobs.jobs)
    add_ledger_check(app, "stats", refresh.problems)
