"""Scheduled jobs: each app's registry, a once-only guard shared by every process, and the scheduler.

A job is a plain function declared on its module's `JobSet` (`jobs = JobSet()`, then
`@jobs.job(name, **trigger)`); declaring records it there only, and the domain's `init_app` hands the
set to an app with `register(app, jobs)`. Before a scheduled run the process inserts a `job_run` row
keyed by (name, slot) in its own transaction, the slot being the scheduled fire time in UTC (never the
moment the run happened to start): the unique key lets exactly one process win each fire time, however
many schedulers run on however many hosts, and however late one of them wakes within the misfire
grace. Every job must also be idempotent on its own, because an operator may run it by hand
(`flask jobs run NAME`, a slot of its own).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import click
import sqlalchemy as sa
from apscheduler.executors.base import run_job as run_apscheduler_job
from apscheduler.executors.pool import ThreadPoolExecutor
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, db, unit_of_work, utcnow

log = logging.getLogger(__name__)

EXTENSION = "moralcredit.jobs"


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


class JobSet:
    """The jobs of one module, declared with `@jobs.job(...)` and given to an app by `register`."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    def __iter__(self) -> Iterator[Job]:
        return iter(self._jobs.values())

    def job(
        self, name: str, description: str = "", **trigger: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Declare `func(now=...)` as job `name`, run by cron-style `trigger` (APScheduler CronTrigger)."""

        def declare(func: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._jobs:
                raise ValueError(f"job {name!r} is declared twice")
            self._jobs[name] = Job(name, func, trigger, description or (func.__doc__ or "").strip().split("\n")[0])
            return func

        return declare


def init_app(app: Flask) -> None:
    """Give `app` an empty job registry and the `jobs` and `scheduler` commands."""
    app.extensions[EXTENSION] = {}
    app.cli.add_command(jobs_cli)
    app.cli.add_command(scheduler_cli)


def register(app: Flask, jobs: JobSet) -> None:
    """Add `jobs` to `app`'s registry; a name the app already has (the same set twice) is an error."""
    registry = _registry(app)
    for job_ in jobs:
        if job_.name in registry:
            raise RuntimeError(f"job {job_.name!r} is already registered on {app.name}")
    registry.update((job_.name, job_) for job_ in jobs)


def jobs_of(app: Flask) -> Mapping[str, Job]:
    """The jobs registered on `app`, by name (read-only)."""
    return MappingProxyType(_registry(app))


def _registry(app: Flask) -> dict[str, Job]:
    try:
        return app.extensions[EXTENSION]
    except KeyError:
        raise RuntimeError("core.jobs.init_app(app) must come before jobs are registered") from None


def fire_slot(fire_time: datetime) -> str:
    """The slot of a scheduled fire time: that instant in UTC, ISO 8601 (`2026-12-08T01:30:00+00:00`),
    the same string whatever time zone the scheduler that fired it runs in."""
    if fire_time.tzinfo is None:
        raise ValueError("a fire time must be timezone-aware")
    return fire_time.astimezone(UTC).isoformat()


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
    job_ = jobs_of(current_app)[name]
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
    log.info("job %s slot %s done in %.2fs: %s", name, slot, time.monotonic() - started, result)
    return None if result is None else str(result)


def _scheduled(app: Flask, name: str, *, fire_time: datetime) -> None:
    with app.app_context():
        try:
            run_job(name, slot=fire_slot(fire_time), now=utcnow())
        except Exception:
            log.exception("scheduled job %s failed", name)
        finally:
            db.session.remove()


class _AtFireTime:
    """A scheduled job as APScheduler's `run_job` sees it, whose function is also told `fire_time`."""

    def __init__(self, job: Any, fire_time: datetime) -> None:
        self._job = job
        self.kwargs = {**job.kwargs, "fire_time": fire_time}

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._job, attribute)

    def __str__(self) -> str:
        return str(self._job)


def _run_at_fire_times(job: Any, jobstore_alias: str, run_times: list[datetime], logger_name: str) -> list:
    events: list = []
    for run_time in run_times:
        events += run_apscheduler_job(_AtFireTime(job, run_time), jobstore_alias, [run_time], logger_name)
    return events


class FireTimeExecutor(ThreadPoolExecutor):
    """APScheduler's thread pool, handing each run the fire time it was scheduled for (`fire_time=`),
    so that a run that starts late (a busy or paused process, within the misfire grace) still claims
    its own fire time and no other."""

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        def done(future: Any) -> None:
            if future.exception() is not None:
                self._run_job_error(job.id, future.exception(), future.exception().__traceback__)
            else:
                self._run_job_success(job.id, future.result())

        self._pool.submit(_run_at_fire_times, job, job._jobstore_alias, run_times, self._logger.name).add_done_callback(
            done
        )


def triggers(app: Flask) -> dict[str, dict[str, Any]]:
    """Each job's cron fields: its own, or those `JOB_TRIGGERS` (MORALCREDIT_JOB_TRIGGERS) sets for it."""
    jobs = jobs_of(app)
    overrides = app.config.get("JOB_TRIGGERS") or {}
    unknown = sorted(set(overrides) - set(jobs))
    if unknown:
        raise RuntimeError(f"MORALCREDIT_JOB_TRIGGERS names unknown jobs: {', '.join(unknown)}")
    if not all(isinstance(fields, dict) for fields in overrides.values()):
        raise RuntimeError("MORALCREDIT_JOB_TRIGGERS gives each job an object of cron fields")
    return {name: dict(overrides.get(name, job_.trigger)) for name, job_ in jobs.items()}


def build_scheduler(app: Flask, *, blocking: bool) -> Any:
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger

    cls = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = cls(timezone=app.config["TIMEZONE"], executors={"default": FireTimeExecutor()})
    for name, trigger in triggers(app).items():
        scheduler.add_job(
            _scheduled,
            CronTrigger(timezone=app.config["TIMEZONE"], **trigger),
            args=(app, name),
            kwargs={"fire_time": None},  # FireTimeExecutor gives each run its own
            id=name,
            name=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=300,
        )
    return scheduler


def maybe_start_scheduler(app: Flask) -> None:
    """Start the scheduler in the background, only under `flask run` (and in the reloader's child),
    never in every gunicorn worker. Call it once the domains have registered their jobs."""
    if app.config["SCHEDULER"] != "on" or app.testing or os.environ.get("FLASK_RUN_FROM_CLI") != "true":
        return
    if app.debug and os.environ.get("WERKZEUG_RUN_MAIN") != "true":
        return
    context = click.get_current_context(silent=True)
    if context is None or context.info_name != "run":
        return
    build_scheduler(app, blocking=False).start()


jobs_cli = AppGroup("jobs", help="定时任务 (scheduled jobs)")
scheduler_cli = AppGroup("scheduler", help="调度器 (scheduler)")


@jobs_cli.command("run")
@click.argument("name")
def run_command(name: str) -> None:
    """Run one job now."""
    jobs = jobs_of(current_app)
    if name not in jobs:
        raise click.ClickException(f"unknown job {name!r}; one of: {', '.join(sorted(jobs))}")
    click.echo(run_job(name) or "done")


@jobs_cli.command("list")
def list_command() -> None:
    """List the jobs and their schedules."""
    schedule = triggers(current_app)
    for job_ in sorted(jobs_of(current_app).values(), key=lambda j: j.name):
        click.echo(f"{job_.name:28} {schedule[job_.name]}  {job_.description}")


@scheduler_cli.command("run")
def scheduler_run_command() -> None:
    """Run the scheduled jobs in the foreground (one such process per deployment is enough)."""
    app = current_app._get_current_object()
    click.echo(f"scheduler: {len(jobs_of(app))} jobs, time zone {app.config['TIMEZONE']}")
    build_scheduler(app, blocking=True).start()
