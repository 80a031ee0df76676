"""Scheduled jobs: a registry, a once-only guard shared by every process, and the scheduler.

A job is a plain function registered with `@job(name, **trigger)`. Before a scheduled run the
process inserts a `job_run` row keyed by (name, slot) in its own transaction: the unique key lets
exactly one process win the slot, however many schedulers are started. Every job must also be
idempotent on its own, because an operator may run it by hand (`flask jobs run NAME`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, db, unit_of_work, utcnow

log = logging.getLogger(__name__)


class JobRun(db.Model):
    __tablename__ = "job_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    slot: Mapped[str] = mapped_column(sa.String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(16), default="running")
    result: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (sa.UniqueConstraint("name", "slot"),)


@dataclass
class Job:
    name: str
    func: Callable[..., Any]
    trigger: dict[str, Any] = field(default_factory=dict)
    description: str = ""


JOBS: dict[str, Job] = {}


def job(name: str, description: str = "", **trigger: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `func(now=...)` as job `name`, run by cron-style `trigger` (APScheduler CronTrigger)."""

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        JOBS[name] = Job(name, func, trigger, description or (func.__doc__ or "").strip().split("\n")[0])
        return func

    return register


def claim(name: str, slot: str, now: datetime) -> int | None:
    """Take (name, slot) for this process; None if another process already has it."""
    try:
        with unit_of_work() as session:
            run = JobRun(name=name, slot=slot, started_at=now)
            session.add(run)
            session.flush()
            run_id = run.id
    except IntegrityError:
        return None
    return run_id


def _finish(run_id: int, status: str, result: str | None) -> None:
    # A write transaction of its own (BEGIN IMMEDIATE on SQLite): never upgrade a read to a write.
    with unit_of_work() as session:
        run = session.get(JobRun, run_id)
        run.status, run.finished_at, run.result = status, utcnow(), None if result is None else result[:2000]


def run_job(name: str, *, slot: str | None = None, now: datetime | None = None) -> str | None:
    """Run a job once for `slot` (default: a manual run now). Returns its result, or None if taken."""
    job_ = JOBS[name]
    now = now or utcnow()
    slot = slot or f"manual:{now.isoformat(timespec='microseconds')}"
    run_id = claim(name, slot, now)
    if run_id is None:
        log.info("job %s slot %s already taken by another process", name, slot)
        return None
    started = time.monotonic()
    try:
        result = job_.func(now=now)
    except Exception as exc:
        db.session.rollback()
        _finish(run_id, "failed", repr(exc))
        log.exception("job %s failed", name)
        raise
    db.session.rollback()
    _finish(run_id, "ok", None if result is None else str(result))
    log.info("job %s done in %.2fs: %s", name, time.monotonic() - started, result)
    return None if result is None else str(result)


def _scheduled(app: Flask, name: str) -> None:
    with app.app_context():
        now = utcnow()
        # One slot per scheduled minute: several schedulers firing the same trigger share it.
        slot = now.replace(second=0, microsecond=0).isoformat()
        try:
            run_job(name, slot=slot, now=now)
        except Exception:
            log.exception("scheduled job %s failed", name)
        finally:
            db.session.remove()


def build_scheduler(app: Flask, *, blocking: bool) -> Any:
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger

    cls = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = cls(timezone=app.config["TIMEZONE"])
    for job_ in JOBS.values():
        scheduler.add_job(
            _scheduled,
            CronTrigger(timezone=app.config["TIMEZONE"], **job_.trigger),
            args=(app, job_.name),
            id=job_.name,
            name=job_.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=300,
        )
    return scheduler
