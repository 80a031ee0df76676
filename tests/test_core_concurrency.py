"""Races the database must settle: real threads and real processes against the real database."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from community.models import User
from core.db import db
from core.jobs import JobRun
from tests import factories as f
from tests.factories import fresh

ROOT = Path(__file__).resolve().parent.parent


def run_threads(app, count: int, work) -> list:
    """Start `count` threads together (a barrier), each with its own app context; return results.

    `work` must not touch ORM objects of the calling test: they belong to its session, and a
    session is not shared between threads. Pass ids and load inside `work`.
    """

    barrier = threading.Barrier(count)
    results: list = [None] * count

    def target(i: int) -> None:
        with app.app_context():
            barrier.wait()
            try:
                results[i] = work(i)
            except Exception as exc:  # the outcome is what the test inspects
                results[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_the_same_phone_registers_once_under_a_burst_of_sign_ups(app):
    f.region("4301", level="county")
    body = {"phone": "13912345678", "name": "张三", "password": "Abcd1234", "region_code": "4301"}
    statuses = run_threads(app, 8, lambda i: app.test_client().post("/api/v1/auth/register", json=body).status_code)
    assert sorted(statuses) == [201] + [409] * 7
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


CLAIM_SCRIPT = """
import sys
from moralcredit import create_app
from core import jobs
from core.jobs import JobSet, run_job

ran = []
test_jobs = JobSet()

@test_jobs.job("test-claim")
def claim_me(*, now):
    ran.append(now)
    return "ran"

app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": sys.argv[1]})
jobs.register(app, test_jobs)
with app.app_context():
    results = [run_job("test-claim", slot=f"slot-{i}") for i in range(int(sys.argv[2]))]
print(sum(1 for r in results if r == "ran"))
"""


def test_a_scheduled_job_runs_once_per_slot_across_two_processes(app, backend):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIM_SCRIPT, backend.url, "40"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert all(p.returncode == 0 for p in processes), [err[-3000:].replace("\\n", "\n") for _, err in outputs]

    ran = [int(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert sum(ran) == 40, f"each of 40 slots runs exactly once, got {ran}"
    rows = db.session.scalars(sa.select(JobRun).where(JobRun.name == "test-claim")).all()
    assert len(rows) == 40 and {r.status for r in rows} == {"ok"}


def test_a_unit_of_work_refuses_writes_it_did_not_start(app):
    """A helper that writes before the unit of work opens would have its write rolled back
    silently (the walk-in that stayed "waitlisted"); now the unit of work refuses loudly."""
    from core.db import NestedUnitOfWork, unit_of_work

    f.region("4301", "桃江县", "county")
    user = f.user("4301")
    db.session.commit()
    db.session.execute(sa.update(User).where(User.id == user.id).values(name="改名"))
    with pytest.raises(NestedUnitOfWork), unit_of_work():
        pass
    fresh()
    with unit_of_work() as session:  # a clean start is fine again
        session.execute(sa.update(User).where(User.id == user.id).values(name="改名"))
    assert db.session.get(User, user.id, populate_existing=True).name == "改名"
