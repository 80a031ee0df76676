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
    """Pages, API routes, jobs and Chinese messages; demo activities for `flask demo seed`."""
    # Imported here: `import volunteer.models` need not load every page and route of the domain.
    from community.cli import add_demo_seeder
    from volunteer import demo, jobs, messages, views
    from volunteer.api import api

    register_messages(app, messages.MESSAGES)
    app.register_blueprint(views.bp)
    core.api.register(app, api)
    core.jobs.register(app, jobs.jobs)
    add_demo_seeder(app, demo.seed)
