"""Scheduled jobs run once per fire time: real `flask scheduler run` processes on one database, one
of them paused across fire times (within the misfire grace) and running late when it wakes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from core import jobs
from core.db import db
from core.jobs import JobRun, fire_slot, run_job

ROOT = Path(__file__).resolve().parent.parent
JOB = "deliver-notifications"
STEP = 2  # seconds between fire times in these tests


def start_scheduler(url: str, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "MORALCREDIT_ENV": "testing",
        "DATABASE_URL": url,
        "MORALCREDIT_JOB_TRIGGERS": json.dumps({JOB: {"second": f"*/{STEP}"}}),
    }
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "scheduler", "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )


def wait_for(condition, processes: list[subprocess.Popen], logs: list[Path], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if any(p.poll() is not None for p in processes) or time.monotonic() > deadline:
            pytest.fail("a scheduler ended or timed out:\n" + "\n".join(log.read_text()[-3000:] for log in logs))
        time.sleep(0.1)


def slots_in(log: Path, what: str) -> list[str]:
    """The slots of `JOB` that the scheduler whose output is `log` ran ("done") or found "taken"."""
    pattern = {"done": rf"job {JOB} slot (\S+) done", "taken": rf"job {JOB} slot (\S+) already taken"}[what]
    return re.findall(pattern, log.read_text())


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGCONT)
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_two_schedulers_and_a_late_one_run_each_fire_time_exactly_once(app, backend, tmp_path):
    db.session.commit()
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    processes = [start_scheduler(backend.url, log) for log in logs]
    try:
        wait_for(lambda: all("scheduler:" in log.read_text() for log in logs), processes, logs)
        wait_for(lambda: len(slots_in(logs[0], "done") + slots_in(logs[1], "done")) >= 2, processes, logs)
        late = processes[1]
        # Pause it just after one of its attempts, so that it holds no transaction while stopped.
        tried = len(slots_in(logs[1], "done") + slots_in(logs[1], "taken"))
        wait_for(lambda: len(slots_in(logs[1], "done") + slots_in(logs[1], "taken")) > tried, processes, logs)
        late.send_signal(signal.SIGSTOP)
        paused_at = datetime.now(UTC)
        time.sleep(2.5 * STEP)
        late.send_signal(signal.SIGCONT)
        woke_at = datetime.now(UTC)
        time.sleep(1.5 * STEP)
    finally:
        for process in processes:
            stop(process)
    output = "\n".join(log.read_text()[-3000:] for log in logs)
    assert "Traceback" not in output, output

    done = slots_in(logs[0], "done") + slots_in(logs[1], "done")
    taken = slots_in(logs[0], "taken") + slots_in(logs[1], "taken")
    rows = db.session.scalars(sa.select(JobRun).where(JobRun.name == JOB)).all()
    slots = sorted(r.slot for r in rows)
    assert sorted(done) == slots, "each run recorded is one the function made, and no other"
    assert {r.status for r in rows} == {"ok"}
    fires = [datetime.fromisoformat(s) for s in slots]
    expected = [fires[0] + timedelta(seconds=STEP * i) for i in range(len(fires))]
    assert fires == expected, f"one run for every fire time from the first to the last: {slots}"
    assert fires[0] < paused_at and fires[-1] > woke_at

    # The paused scheduler woke after its last missed fire time and tried to run it, late: refused.
    missed = [f for f in expected if paused_at < f < woke_at]
    assert missed
    assert fire_slot(missed[-1]) in slots_in(logs[1], "taken") + slots_in(logs[1], "done")
    assert sorted(set(taken)) == sorted(taken), "a scheduler tries each fire time once"
    assert set(taken) <= set(slots)


def test_a_fire_time_has_one_slot_whatever_the_time_zone_of_the_scheduler():
    in_shanghai = datetime(2026, 12, 8, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert fire_slot(in_shanghai) == "2026-12-08T01:30:00+00:00"
    assert fire_slot(in_shanghai.astimezone(ZoneInfo("Europe/Berlin"))) == fire_slot(in_shanghai)
    with pytest.raises(ValueError):
        fire_slot(datetime(2026, 12, 8, 1, 30))


def test_a_late_run_claims_its_own_fire_time_and_a_second_claim_of_it_is_refused(app):
    fire = datetime(2026, 12, 8, 1, 30, tzinfo=UTC)
    jobs._scheduled(app, JOB, fire_time=fire)
    jobs._scheduled(app, JOB, fire_time=fire.astimezone(ZoneInfo("Asia/Shanghai")))
    jobs._scheduled(app, JOB, fire_time=fire + timedelta(minutes=1))
    slots = db.session.scalars(sa.select(JobRun.slot).where(JobRun.name == JOB).order_by(JobRun.slot)).all()
    assert slots == ["2026-12-08T01:30:00+00:00", "2026-12-08T01:31:00+00:00"]


def test_a_run_by_hand_takes_a_slot_of_its_own_each_time(app):
    assert run_job(JOB) == "delivered 0"
    assert run_job(JOB) == "delivered 0"
    slots = db.session.scalars(sa.select(JobRun.slot).where(JobRun.name == JOB)).all()
    assert len(set(slots)) == 2 and all(s.startswith("manual:") for s in slots)


def test_a_job_trigger_can_be_set_in_the_configuration_and_an_unknown_name_is_refused(app):
    app.config["JOB_TRIGGERS"] = {JOB: {"second": "*/5"}}
    try:
        scheduler = jobs.build_scheduler(app, blocking=False)
        assert str(scheduler.get_job(JOB).trigger).startswith("cron[second='*/5'")
        app.config["JOB_TRIGGERS"] = {"no-such-job": {"minute": 1}}
        with pytest.raises(RuntimeError, match="no-such-job"):
            jobs.build_scheduler(app, blocking=False)
    finally:
        app.config["JOB_TRIGGERS"] = {}
