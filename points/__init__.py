"""Points and the moral e-archive (道德电子档案): the double-entry ledger every point passes through,
rules that turn service time into points, deeds and deductions, certificates and expiry.
Builds on `community`; never imports `volunteer` or `exchange`.

`init_app(app)` wires the domain into an app, after `community` (see `moralcredit.create_app`).
Importing a module of the domain changes no app.
"""

from __future__ import annotations

from flask import Flask

import core.api
import core.jobs
from core.db import db
from core.errors import register_messages


def init_app(app: Flask) -> None:
    """Pages, API routes, jobs, Chinese messages and commands; residents' balances for `community`;
    demo points for `flask demo seed`; a resident's account, archive, deeds and certificates for
    their export."""
    # Imported here: `import points.rules` need not load every page and route of the domain.
    from community import privacy as residents_rights
    from community.balances import register_balance_reader
    from community.cli import add_demo_seeder
    from points import cli, demo, jobs, ledger, messages, privacy, settings_pages, views
    from points.api import api

    register_messages(app, messages.MESSAGES)
    app.register_blueprint(views.bp)
    app.register_blueprint(settings_pages.bp)
    core.api.register(app, api)
    core.jobs.register(app, jobs.jobs)
    cli.init_app(app)
    register_balance_reader(app, lambda user: ledger.balance(db.session, user.id))
    add_demo_seeder(app, demo.seed)
    residents_rights.add_export_section(app, "account", "积分账户", privacy.account_of)
    residents_rights.add_export_section(app, "archive", "道德档案", privacy.archive_of)
    residents_rights.add_export_section(app, "deeds", "好人好事与扣分", privacy.deeds_of)
    residents_rights.add_export_section(app, "certificates", "服务证明", privacy.certificates_of)
