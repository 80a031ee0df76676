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
    broken, checked, broken_count = [], 0, 0
    for user_id, result in archive.verify_all(db.session):  # page by page, in bounded memory
        checked += 1
        if not result.ok:
            broken_count += 1
            if len(broken) < 1000:  # the audit entry names the first ones; the count says the rest
                broken.append({"user_id": user_id, "first_bad_seq": result.first_bad_seq})
    problems = ledger.invariant_problems(db.session) + roots.problems(db.session)
    db.session.rollback()
    with unit_of_work():
        audit.record(
            "archive.verify",
            "archive",
            None,
            after={
                "checked": checked,
                "broken": broken,
                "broken_count": broken_count,
                "ledger_problems": problems[:50],
            },
            now=now,
        )
    return f"checked {checked} archives, {broken_count} broken, {len(problems)} ledger problems"


@jobs.job("apply-expiry", hour=0, minute=20)
def apply_expiry(*, now: datetime) -> str:
    """Lapse old points in regions whose settlement day is today."""
    return f"lapsed {expiry.apply(now=now)} points"
