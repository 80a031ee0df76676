"""`flask archive verify [--resident ID]`: exit status 1 on any broken chain."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from core.db import db
from points import archive, ledger

archive_cli = AppGroup("archive", help="道德电子档案 (moral archives)")


@archive_cli.command("verify")
@click.option("--resident", "resident_id", type=int, help="only this resident's archive")
def verify(resident_id: int | None) -> None:
    """Verify hash chains (and, for all residents, the ledger's invariants)."""
    users = [resident_id] if resident_id else archive.residents_with_entries(db.session)
    bad = 0
    for user_id in users:
        result = archive.verify(db.session, user_id)
        if not result.ok:
            bad += 1
            click.echo(f"resident {user_id}: BROKEN at entry {result.first_bad_seq} ({result.entries} read)")
            for problem in result.problems:
                click.echo(f"  - {problem}")
    problems = [] if resident_id else ledger.invariant_problems(db.session)
    for problem in problems:
        click.echo(f"ledger: {problem}")
    click.echo(
        f"verified {len(users)} archives: {len(users) - bad} intact, {bad} broken; "
        f"ledger {'sound' if not problems else 'UNSOUND'}"
    )
    if bad or problems:
        raise SystemExit(1)
