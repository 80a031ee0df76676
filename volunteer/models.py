"""Tables of volunteer service: activities, sign-ups, attendance and its corrections."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from community.models import Department, Region, User
from core.db import UTCDateTime, db, utcnow

CATEGORIES = ("平安巡逻", "矛盾调解", "环境整治", "文明劝导", "助老助残", "法治宣传", "其他")
ACTIVITY_STATUSES = ("draft", "published", "cancelled", "finished", "closed")
SIGNUP_STATUSES = ("confirmed", "waitlisted", "pending", "rejected", "cancelled")
ATTENDANCE_STATUSES = ("open", "closed", "auto", "annulled")
REVIEW_STATES = ("pending", "approved", "rejected")
METHODS = ("venue", "kiosk", "manual", "auto")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Activity(db.Model):
    __tablename__ = "activity"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    category: Mapped[str] = mapped_column(sa.String(16))
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("department.id", ondelete="RESTRICT"), index=True)
    region_id: Mapped[int] = mapped_column(sa.ForeignKey("region.id", ondelete="RESTRICT"), index=True)
    address: Mapped[str] = mapped_column(sa.String(200))
    latitude: Mapped[float | None] = mapped_column(sa.Float)
    longitude: Mapped[float | None] = mapped_column(sa.Float)
    radius_m: Mapped[int | None] = mapped_column(sa.Integer)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    signup_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    capacity: Mapped[int | None] = mapped_column(sa.Integer)
    requires_approval: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    allow_walk_in: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    points_per_hour: Mapped[int | None] = mapped_column(sa.Integer)
    status: Mapped[str] = mapped_column(sa.String(16), default="draft", index=True)
    secret: Mapped[str] = mapped_column(sa.String(64))
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    department: Mapped[Department] = relationship()
    region: Mapped[Region] = relationship()

    __table_args__ = (
        sa.CheckConstraint(_in("status", ACTIVITY_STATUSES), name="status"),
        sa.CheckConstraint("ends_at > starts_at", name="window"),
        sa.CheckConstraint("capacity IS NULL OR capacity > 0", name="capacity"),
    )

    def scope_keys(self) -> set[tuple[str, int]]:
        return {("department", self.department_id)} | self.region.scope_keys()


class Signup(db.Model):
    __tablename__ = "signup"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(sa.ForeignKey("activity.id", ondelete="RESTRICT"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    status: Mapped[str] = mapped_column(sa.String(16))
    no_show: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    walk_in: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Who signed the resident up on their behalf (代报名: an organizer or their grid worker), if anyone.
    proxy_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    activity: Mapped[Activity] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("activity_id", "user_id"),
        sa.CheckConstraint(_in("status", SIGNUP_STATUSES), name="status"),
        sa.Index("ix_signup_activity_status", "activity_id", "status", "id"),
    )

    @property
    def name(self) -> str:
        return self.user.name


class Attendance(db.Model):
    """One volunteer's presence at one activity: in, out, how, and what it was credited."""

    __tablename__ = "attendance"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(sa.ForeignKey("activity.id", ondelete="RESTRICT"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    checked_in_at: Mapped[datetime] = mapped_column(UTCDateTime)
    checked_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    method_in: Mapped[str] = mapped_column(sa.String(16))
    method_out: Mapped[str | None] = mapped_column(sa.String(16))
    operator_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    manual: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    credited_minutes: Mapped[int] = mapped_column(sa.Integer, default=0)
    points: Mapped[int] = mapped_column(sa.Integer, default=0)
    version: Mapped[int] = mapped_column(sa.Integer, default=0)
    credit_key: Mapped[str | None] = mapped_column(sa.String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What the scans alone say (never changed by a correction): minutes beyond what these times
    # earn are a make-up, which waits for a second person (the four-eyes rule, API.md).
    scanned_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scanned_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the scans earned when they were settled (rule, window and day of that moment): a later
    # change of the activity, the rule or the day a correction files the minutes under never turns
    # into credit nobody reviewed.
    scanned_minutes: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    scanned_points: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    makeup_minutes: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    review: Mapped[str | None] = mapped_column(sa.String(16))
    proposed_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    proposed_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_reason: Mapped[str | None] = mapped_column(sa.String(255))
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_note: Mapped[str | None] = mapped_column(sa.String(255))
    # Done on the resident's behalf (代办): the organizer who scanned their printed card, or else
    # whoever signed them up for them. Their points and archive entries say so.
    proxy_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    activity: Mapped[Activity] = relationship()

    __table_args__ = (
        # One attendance per volunteer and activity: two scans at once cannot open two.
        sa.UniqueConstraint("activity_id", "user_id"),
        sa.CheckConstraint(_in("status", ATTENDANCE_STATUSES), name="status"),
        sa.CheckConstraint("checked_out_at IS NULL OR checked_out_at >= checked_in_at", name="order"),
        sa.CheckConstraint("review IS NULL OR " + _in("review", REVIEW_STATES), name="review"),
        sa.CheckConstraint("makeup_minutes >= 0 AND makeup_minutes <= credited_minutes", name="makeup"),
        sa.Index("ix_attendance_review", "review"),
    )

    def scope_keys(self) -> set[tuple[str, int]]:
        return self.activity.scope_keys()


class AttendanceCorrection(db.Model):
    __tablename__ = "attendance_correction"

    id: Mapped[int] = mapped_column(primary_key=True)
    attendance_id: Mapped[int] = mapped_column(sa.ForeignKey("attendance.id", ondelete="RESTRICT"), index=True)
    before: Mapped[dict | None] = mapped_column(sa.JSON)
    after: Mapped[dict] = mapped_column(sa.JSON)
    reason: Mapped[str] = mapped_column(sa.String(255))
    actor_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
