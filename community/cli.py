"""Commands for operators: `flask admin create`, used by deployment scripts (idempotent),
`flask admin totp-reset --phone` (a second factor no admin can reset),
`flask import KIND FILE` (bulk import, as the system) and `flask demo seed`.

The demo county is the people domain's; each domain wired in after it adds its own demo data with
`add_demo_seeder(app, seed)` in its `init_app`, so the seeders run in the composition order
(`moralcredit.create_app`): people and places first, then what builds on them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from community import demo, imports, services
from community.importers import KINDS
from community.models import ROOT_LEVELS
from core.db import utcnow
from core.errors import DomainError

DEMO_SEEDERS = "community.demo_seeders"
SCALE_SEEDER = "community.scale_seeder"

admin_cli = AppGroup("admin", help="管理员账号 (administrator accounts)")
demo_cli = AppGroup("demo", help="演示数据 (demo data)")


def init_app(app: Flask) -> None:
    app.extensions[DEMO_SEEDERS] = []
    app.cli.add_command(admin_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(import_rows)


def add_demo_seeder(app: Flask, seed: Callable[[], str]) -> None:
    """Run `seed()` (it returns a line to print) after the demo county is built by `flask demo seed`."""
    try:
        app.extensions[DEMO_SEEDERS].append(seed)
    except KeyError:
        raise RuntimeError("community.init_app(app) must come before a domain adds demo data") from None


def set_scale_seeder(app: Flask, seed: Callable[..., str], scales: tuple[str, ...]) -> None:
    """Let `flask demo seed --scale NAME` call `seed(NAME, progress=True)` (bulk data, one of
    `scales`) instead of building the small demo county."""
    app.extensions[SCALE_SEEDER] = (seed, scales)


@admin_cli.command("create")
@click.option("--phone", required=True)
@click.option("--password", required=True)
@click.option("--name", required=True)
@click.option("--region-code", required=True, help="code of the root region (province, city or county)")
@click.option("--region-name", required=True)
@click.option(
    "--level",
    type=click.Choice(ROOT_LEVELS),
    default=None,
    help="the root's level; by default a 6-digit code tells it (xx0000 province, xxxx00 city, else county)",
)
def create_admin(phone: str, password: str, name: str, region_code: str, region_name: str, level: str | None) -> None:
    """Create the root region if missing and an admin scoped to it. Safe to run again."""
    try:
        user, created = services.ensure_admin(
            phone=phone,
            password=password,
            name=name,
            region_code=region_code,
            region_name=region_name,
            level=level,
            now=utcnow(),
        )
    except DomainError as error:
        details = "; ".join(f"{k}: {', '.join(v)}" for k, v in (error.errors or {}).items())
        raise click.ClickException(f"{error.detail} {details}".strip()) from error
    click.echo(f"{'created' if created else 'exists'}: admin {user.name} ({user.phone}) over {region_code}")


@admin_cli.command("totp-reset")
@click.option("--phone", required=True)
def reset_totp(phone: str) -> None:
    """Turn off a person's second factor (a top admin who lost their phone: no admin outranks them)."""
    from community import queries, totp

    user = queries.user_by_phone(phone.strip())
    if user is None:
        raise click.ClickException("no account with this phone number")
    try:
        totp.reset(actor=None, user_id=user.id, now=utcnow())
    except DomainError as error:
        raise click.ClickException(error.detail) from error
    click.echo(f"second factor reset: {user.name}; they sign in with the password and enrol again")


@click.command("import")
@click.argument("kind", type=click.Choice(tuple(KINDS)))
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="check every row and change nothing")
def import_rows(kind: str, file: str, dry_run: bool) -> None:
    """Import regions, departments, households or residents from an .xlsx or .csv file, all rows
    or none (the same as POST /api/v1/imports, with the system's scope). Exit status 1 when a row
    is refused; every refusal is listed with its row and column."""
    with contextlib.ExitStack() as stack:
        bars: list = []

        def progress(done: int, total: int | None) -> None:
            if not bars:
                label = "检查" if dry_run else "导入"
                bars.append(stack.enter_context(click.progressbar(length=max(total or 0, done), label=label)))
            bar = bars[0]
            bar.length = max(bar.length, done)
            bar.update(done - bar.pos)

        try:
            stream = stack.enter_context(open(file, "rb"))  # closed by the stack
            report = imports.run(
                kind, stream, actor=None, dry_run=dry_run, now=utcnow(), filename=file, progress=progress
            )
        except DomainError as error:
            raise click.ClickException(error.detail) from error
    for error in report.errors:
        click.echo(f"第 {error.row} 行 {error.column}: {error.message} [{error.code}]")
    if report.error_count > len(report.errors):
        click.echo(f"…… 另有 {report.error_count - len(report.errors)} 处错误未列出")
    outcome = "dry run" if dry_run else ("applied" if report.applied else "refused, nothing changed")
    click.echo(
        f"{kind}: {report.rows} rows, {report.valid} valid, {report.created} created, {report.updated} updated, "
        f"{report.skipped} skipped, {report.error_count} errors ({outcome})"
    )
    if report.error_count:
        raise SystemExit(1)


@demo_cli.command("seed")
@click.option("--force", is_flag=True, help="seed even if the database already holds people")
@click.option("--scale", help="bulk data instead of the small county: city, county, pct1 or test (an empty database)")
def seed(force: bool, scale: str | None) -> None:
    """Fill an empty database with a realistic demo county (or, with --scale, a city in bulk)."""
    if scale is not None:
        bulk, scales = current_app.extensions.get(SCALE_SEEDER, (None, ()))
        if bulk is None or scale not in scales:
            raise click.BadParameter(f"one of {', '.join(scales) or '(none on this app)'}", param_hint="--scale")
        click.echo(bulk(scale, progress=True))
        return
    result = demo.seed(force=force)
    click.echo(result)
    if "skipped" not in result:
        for seed_more in current_app.extensions[DEMO_SEEDERS]:
            click.echo(seed_more())
