"""Scheduled work of volunteer service: close missed check-outs, and remind signed-up volunteers the
day before and an hour before. Each job is idempotent; the rules live in the domain modules."""

from __future__ import annotations

from datetime import datetime

from core.jobs import JobSet
from volunteer import attendance, signups

jobs = JobSet()


@jobs.job("close-missed-checkouts", minute="*/10")
def close_missed_checkouts(*, now: datetime) -> str:
    """Close check-outs nobody scanned, at the activity's end, for the organizer to confirm."""
    return f"closed {attendance.close_missed_checkouts(now=now)}"


@jobs.job("remind-volunteers", minute="*/5")
def remind(*, now: datetime) -> str:
    """Remind confirmed volunteers a day and an hour before the start (each reminder once)."""
    return f"{signups.queue_reminders(now=now)} reminders queued (repeats ignored)"
