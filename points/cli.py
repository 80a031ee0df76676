"""`flask archive verify [--resident ID]` and `flask ledger check`: exit status 1 on any break.

Both recompute the latest published archive root (`points.roots`) from the archives as they are
now, which finds a rewrite that the chains and anchors alone cannot, and print the root as of now.

`ledger check` covers points and archives; a domain whose ledger rests on points (the supermarket's
stock) adds its own invariants with `add_ledger_check(app, name, check)` in its `init_app`.
"""

from __future__ import annotations

from collections.abc import Callable

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from core.db import db
from points import archive, ledger, roots

LEDGER_CHECKS = "points.ledger_checks"

archive_cli = AppGroup("archive", help="道德电子档案 (moral archives)")
ledger_cli = AppGroup("ledger", help="积分与库存账本 (ledgers)")


def init_app(app: Flask) -> None:
    app.extensions[LEDGER_CHECKS] = {}
    app.cli.add_command(archive_cli)
    app.cli.add_command(ledger_cli)


def add_ledger_check(app: Flask, name: str, check: Callable[[Session], list[str]]) -> None:
    """Have `flask ledger check` also report `check(session)`'s problems, each prefixed by `name`."""
    try:
        app.extensions[LEDGER_CHECKS][name] = check
    except KeyError:
        raise RuntimeError("points.init_app(app) must come before a domain adds a ledger check") from None


@archive_cli.command("verify")
@click.option("--resident", "resident_id", type=int, help="only this resident's archive")
def verify(resident_id: int | None) -> None:
    """Verify hash chains (and, for all residents, the ledger's invariants)."""
    if resident_id:
        results = iter([(resident_id, archive.verify(db.session, resident_id))])
    else:
        results = archive.verify_all(db.session)
    bad = checked = 0
    for user_id, result in results:
        checked += 1
        if not result.ok:
            bad += 1
            click.echo(f"resident {user_id}: BROKEN at entry {result.first_bad_seq} ({result.entries} read)")
            for problem in result.problems:
                click.echo(f"  - {problem}")
    problems = [] if resident_id else ledger.invariant_problems(db.session)
    for problem in problems:
        click.echo(f"ledger: {problem}")
    published = [] if resident_id else _roots()
    click.echo(
        f"verified {checked} archives: {checked - bad} intact, {bad} broken; "
        f"ledger {'sound' if not problems else 'UNSOUND'}"
    )
    if bad or problems or published:
        raise SystemExit(1)


def _roots() -> list[str]:
    """Say the root as of now; recompute the latest published one and name a mismatch."""
    now = roots.compute(db.session, roots.take_mark(db.session))
    click.echo(f"archive root now: {now.root} over {now.leaves} archives (entries up to {now.mark})")
    published = roots.latest(db.session)
    found = roots.problems(db.session)
    for problem in found:
        click.echo(f"archive root: {problem}")
    if published is not None and not found:
        click.echo(f"published archive root of {published.created_at:%Y-%m-%d} ({published.root[:16]}…) matches")
    return found


@ledger_cli.command("check")
def check() -> None:
    """Every invariant of points, stock and archives; exit status 1 naming each break."""
    problems = [f"ledger: {p}" for p in ledger.invariant_problems(db.session)]
    for name, check_more in current_app.extensions[LEDGER_CHECKS].items():
        problems += [f"{name}: {p}" for p in check_more(db.session)]
    for problem in problems:
        click.echo(problem)
    residents = broken = 0
    for user_id, result in archive.verify_all(db.session):  # page by page: a city fits in memory
        residents += 1
        broken += len(result.problems)
        for problem in result.problems:
            click.echo(f"archive of resident {user_id}: {problem}")
    problems += _roots()
    click.echo(f"checked the ledgers and {residents} archives: {len(problems) + broken} problems")
    if problems or broken:
        raise SystemExit(1)
