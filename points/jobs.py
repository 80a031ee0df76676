"""Scheduled work of the points domain: post deeds after their notice, verify every archive chain
(nightly, findings to the audit log), and apply annual expiry. Each is idempotent."""

from __future__ import annotations

from datetime import datetime

from core import audit
from core.db import db, unit_of_work
from core.jobs import JobSet
from points import archive, deeds, expiry, ledger, roots

jobs = JobSet()


@jobs.job("post-deeds", minute="*/10")
def post_deeds(*, now: datetime) -> str:
    """Post approved deeds whose public notice has ended and that no open objection holds."""
    run = deeds.post_due(now=now)
    return f"posted {run.posted}, failed {run.failed}"


@jobs.job("verify-archives", hour=2, minute=30)
def verify_archives(*, now: datetime) -> str:
    """Verify every resident's archive chain and the ledger's invariants; record the findings."""
    broken = []
    users = archive.residents_with_entries(db.session)
    for user_id in users:
        result = archive.verify(db.session, user_id)
        if not result.ok:
            broken.append({"user_id": user_id, "first_bad_seq": result.first_bad_seq})
    problems = ledger.invariant_problems(db.session) + roots.problems(db.session)
    db.session.rollback()
    with unit_of_work():
        audit.record(
            "archive.verify",
            "archive",
            None,
            now=now,
            after={"checked": len(users), "broken": broken, "ledger_problems": problems[:50]},
        )
    return f"checked {len(users)} archives, {len(broken)} broken, {len(problems)} ledger problems"


@jobs.job("apply-expiry", hour=0, minute=20)
def apply_expiry(*, now: datetime) -> str:
    """Lapse old points in regions whose settlement day is today."""
    return f"lapsed {expiry.apply(now=now)} points"
