"""Commands for operators: `flask admin create`, used by deployment scripts (idempotent)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from community import services
from core.db import utcnow
from core.errors import DomainError

admin_cli = AppGroup("admin", help="管理员账号 (administrator accounts)")


@admin_cli.command("create")
@click.option("--phone", required=True)
@click.option("--password", required=True)
@click.option("--name", required=True)
@click.option("--region-code", required=True, help="code of the root region (city or county)")
@click.option("--region-name", required=True)
def create_admin(phone: str, password: str, name: str, region_code: str, region_name: str) -> None:
    """Create the root region if missing and an admin scoped to it. Safe to run again."""
    try:
        user, created = services.ensure_admin(
            phone=phone, password=password, name=name, region_code=region_code, region_name=region_name, now=utcnow()
        )
    except DomainError as error:
        details = "; ".join(f"{k}: {', '.join(v)}" for k, v in (error.errors or {}).items())
        raise click.ClickException(f"{error.detail} {details}".strip()) from error
    click.echo(f"{'created' if created else 'exists'}: admin {user.name} ({user.phone}) over {region_code}")
