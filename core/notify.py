"""The notification outbox: messages to people, written in the same transaction as the change that
causes them, then delivered by pluggable senders. The default sender writes to the log; every
message is also in the person's in-app inbox. A message key makes each notice once-only.
`init_app(app)` gives an app its senders and the delivery job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import UTCDateTime, db, insert_if_absent, unit_of_work, utcnow
from core.jobs import JobSet
from core.jobs import register as register_jobs

log = logging.getLogger(__name__)

EXTENSION = "moralcredit.notify"
jobs = JobSet()


class Notification(db.Model):
    __tablename__ = "notification"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.Integer, index=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    title: Mapped[str] = mapped_column(sa.String(128))
    body: Mapped[str] = mapped_column(sa.Text)
    key: Mapped[str] = mapped_column(sa.String(160), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


Sender = Callable[[Notification], None]


def init_app(app: Flask) -> None:
    """Give `app` the log sender (more may be added) and the delivery job."""
    app.extensions[EXTENSION] = [_log_sender]
    register_jobs(app, jobs)


def register_sender(app: Flask, sender: Sender) -> None:
    """Add a channel (SMS, WeChat template message, ...) to `app`; the log sender is always there."""
    app.extensions[EXTENSION].append(sender)


def _log_sender(note: Notification) -> None:
    log.info("notify user %s [%s] %s: %s", note.user_id, note.kind, note.title, note.body)


def queue(session: Session, *, user_id: int, kind: str, title: str, body: str, key: str, now: datetime) -> None:
    """Queue a message in the caller's transaction; a key already used does nothing."""
    insert_if_absent(
        session,
        Notification,
        {"user_id": user_id, "kind": kind, "title": title[:128], "body": body, "key": key, "created_at": now},
        ("key",),
    )


def deliver_pending(*, now: datetime, limit: int = 500) -> int:
    """Hand unsent messages to the senders and mark them sent (the scheduled job)."""
    ids = list(
        db.session.scalars(
            sa.select(Notification.id).where(Notification.sent_at.is_(None)).order_by(Notification.id).limit(limit)
        )
    )
    db.session.rollback()
    senders = list(current_app.extensions[EXTENSION])
    for note_id in ids:
        with unit_of_work() as session:
            note = session.get(Notification, note_id, with_for_update=True, populate_existing=True)
            if note is None or note.sent_at is not None:
                continue
            for sender in senders:
                sender(note)
            note.sent_at = now
    return len(ids)


def inbox(user_id: int, limit: int = 50) -> list[Notification]:
    return list(
        db.session.scalars(
            sa.select(Notification).where(Notification.user_id == user_id).order_by(Notification.id.desc()).limit(limit)
        )
    )


@jobs.job("deliver-notifications", minute="*")
def deliver_notifications(*, now: datetime) -> str:
    """Hand queued notifications to the senders."""
    return f"delivered {deliver_pending(now=now)}"
