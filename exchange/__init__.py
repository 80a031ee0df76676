"""The moral supermarket (道德超市): stores, items, the stock ledger and redemptions (through
`points`). Never imports `volunteer`.

`init_app(app)` wires the domain into an app, after `points` (see `moralcredit.create_app`).
Importing a module of the domain changes no app.
"""

from __future__ import annotations

from flask import Flask

import core.api
import core.jobs
from core.errors import register_messages


def init_app(app: Flask) -> None:
    """Pages, API routes, jobs and Chinese messages; the stock ledger's invariants for
    `flask ledger check`; demo stores and redemptions for `flask demo seed`; a resident's
    redemptions for their export."""
    # Imported here: `import exchange.models` need not load every page and route of the domain.
    from community import privacy as residents_rights
    from community.cli import add_demo_seeder
    from exchange import demo, inventory, jobs, messages, privacy, views
    from exchange.api import api
    from points.cli import add_ledger_check

    register_messages(app, messages.MESSAGES)
    app.register_blueprint(views.bp)
    core.api.register(app, api)
    core.jobs.register(app, jobs.jobs)
    add_ledger_check(app, "stock", inventory.invariant_problems)
    add_demo_seeder(app, demo.seed)
    residents_rights.add_export_section(app, "redemptions", "兑换记录", privacy.redemptions_of)
