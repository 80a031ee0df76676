"""Crash safety (issue 13): mixed load from 2 client processes × 8 threads against gunicorn, killed
with SIGKILL at random moments mid-load and restarted; every unanswered request is replayed with its
Idempotency-Key. Then `flask ledger check` passes and every operation, acknowledged or replayed, is
present exactly once; acknowledged requests sent again get their first answer (tests/crash_load.py).
The long run is bench/bench_crash.py."""

from __future__ import annotations

import random

import pytest

from core.db import db
from tests import crash_load

ROUNDS = 3  # three kills per database


@pytest.mark.slow
def test_sigkill_mid_load_loses_nothing_acknowledged_and_replays_apply_once(app, backend, capsys):
    world = crash_load.seed(ROUNDS, secret=app.config["SECRET_KEY"])
    db.session.commit()
    db.session.remove()
    seed = random.randrange(1_000_000)
    run = crash_load.run(backend.url, world, ROUNDS, seed=seed, log=lambda _line: None)
    checked = crash_load.ledger_check(backend.url, world["secret"])
    problems = crash_load.audit(run.ops, world)
    with capsys.disabled():
        print(f"\n[{backend.name}] seed {seed}: {crash_load.summary(run, problems, checked)}")
    assert run.figures["kills"] == ROUNDS
    assert run.figures["acknowledged"] > 0 and run.figures["replayed"] > 0 and run.figures["resent"] > 0
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert problems == [], problems[:20]
    assert run.mismatches == [], run.mismatches[:20]
    assert run.figures["server_errors"] == 0, run.server_log
