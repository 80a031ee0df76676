"""Scheduled work of volunteer service: close missed check-outs, finish past activities, and remind
signed-up volunteers the day before and an hour before. Each job is idempotent."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from core.db import db, unit_of_work
from core.jobs import job
from core.notify import queue
from volunteer import attendance
from volunteer.models import Activity, Signup


@job("close-missed-checkouts", minute="*/10")
def close_missed_checkouts(*, now: datetime) -> str:
    """Close check-outs nobody scanned, at the activity's end, for the organizer to confirm."""
    return f"closed {attendance.close_missed_checkouts(now=now)}"


@job("remind-volunteers", minute="*/5")
def remind(*, now: datetime) -> str:
    """Remind confirmed volunteers a day and an hour before the start (each reminder once)."""
    sent = 0
    for label, ahead in (("day", timedelta(days=1)), ("hour", timedelta(hours=1))):
        rows = db.session.execute(
            sa.select(Signup.user_id, Activity.id, Activity.title, Activity.starts_at, Activity.address)
            .join(Activity)
            .where(
                Signup.status == "confirmed",
                Activity.status == "published",
                Activity.starts_at > now,
                Activity.starts_at <= now + ahead,
            )
        ).all()
        db.session.rollback()
        with unit_of_work() as session:
            for user_id, activity_id, title, _starts_at, address in rows:
                when = "明天" if label == "day" else "1 小时后"
                queue(
                    session,
                    user_id=user_id,
                    kind="reminder",
                    title=f"活动提醒：{title}",
                    body=f"您报名的「{title}」{when}开始，地点：{address}。请准时到场扫码签到。",
                    key=f"remind:{label}:{activity_id}:{user_id}",
                    now=now,
                )
                sent += 1
    return f"{sent} reminders queued (repeats ignored)"
