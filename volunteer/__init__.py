"""Volunteer service: activities, sign-ups, venue and personal-code check-in, attendance, and the
conversion of time served into points (through `points`). Never imports `exchange`.

`init_app(app)` wires the domain into an app, after `points` (see `moralcredit.create_app`).
Importing a module of the domain changes no app.
"""

from __future__ import annotations

from flask import Flask

import core.api
import core.jobs
from core.errors import register_messages


def init_app(app: Flask) -> None:
    """Pages, API routes, jobs and Chinese messages; demo activities for `flask demo seed`; what a
    resident's export holds of their service, and what closing their account waits for and does."""
    # Imported here: `import volunteer.models` need not load every page and route of the domain.
    from community import privacy as residents_rights
    from community.cli import add_demo_seeder
    from volunteer import demo, jobs, messages, privacy, views
    from volunteer.api import api

    register_messages(app, messages.MESSAGES)
    app.register_blueprint(views.bp)
    core.api.register(app, api)
    core.jobs.register(app, jobs.jobs)
    add_demo_seeder(app, demo.seed)
    residents_rights.add_export_section(app, "signups", "报名", privacy.signups_of)
    residents_rights.add_export_section(app, "attendances", "签到与服务时长", privacy.attendances_of)
    residents_rights.add_closure_check(app, privacy.nothing_open)
    residents_rights.add_closure_step(app, privacy.cancel_future_signups)
