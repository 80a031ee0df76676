"""The command line that deployment scripts rely on: admin create, demo seed, jobs."""

from __future__ import annotations

import sqlalchemy as sa

from community.models import Department, Household, Region, User
from core.db import db


def test_admin_create_is_idempotent(app):
    runner = app.test_cli_runner()
    args = [
        "admin",
        "create",
        "--phone",
        "13800000001",
        "--password",
        "Admin2026x",
        "--name",
        "管理员",
        "--region-code",
        "430922",
        "--region-name",
        "桃江县",
    ]
    first = runner.invoke(args=args)
    assert first.exit_code == 0 and "created" in first.output
    second = runner.invoke(args=args)
    assert second.exit_code == 0 and "exists" in second.output
    admin = db.session.scalar(sa.select(User).where(User.phone == "13800000001"))
    assert [(g.role, g.scope_type) for g in admin.grants] == [("admin", "region")]
    root = db.session.scalar(sa.select(Region).where(Region.code == "430922"))
    assert root.level == "county" and root.parent_id is None


def test_admin_create_reports_a_weak_password_plainly(app):
    args = ["admin", "create", "--phone", "13800000001", "--password", "123", "--name", "管理员"]
    result = app.test_cli_runner().invoke(args=[*args, "--region-code", "430922", "--region-name", "桃江县"])
    assert result.exit_code != 0 and "密码" in result.output


def test_demo_seed_builds_a_county_once(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    count = lambda model: db.session.scalar(sa.select(sa.func.count()).select_from(model))  # noqa: E731
    # 200 residents, 5 demo staff, and a clerk for each of the two other demo stores.
    assert count(User) == 207 and count(Department) == 6 and count(Household) >= 50
    levels = dict(db.session.execute(sa.select(Region.level, sa.func.count()).group_by(Region.level)).all())
    assert levels["township"] == 3 and levels["grid"] == 20 and levels["village"] + levels["community"] == 10
    roles = {g.role for u in db.session.scalars(sa.select(User).where(User.phone.like("138000000%"))) for g in u.grants}
    assert roles == {"admin", "organizer", "grid_worker", "reviewer", "clerk"}
    again = runner.invoke(args=["demo", "seed"])
    assert again.exit_code == 0 and "skipped" in again.output and count(User) == 207


def test_jobs_can_be_listed_and_run_by_hand(app):
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["jobs", "list"])
    assert "prune-login-attempts" in listed.output
    ran = runner.invoke(args=["jobs", "run", "prune-login-attempts"])
    assert ran.exit_code == 0 and "pruned 0" in ran.output
    unknown = runner.invoke(args=["jobs", "run", "no-such-job"])
    assert unknown.exit_code != 0 and "unknown job" in unknown.output
