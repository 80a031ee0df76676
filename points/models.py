"""Tables of the points domain: accounts, transfers (the ledger), archive entries, rules, deeds and
their objections, admin adjustments, certificates and per-region policies.

Transfers and archive entries are append-only: the database refuses UPDATE and DELETE on them
(triggers made by the migration). A resident account's balance can never go below zero (CHECK).
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from community.models import Region, User
from core.db import UTCDateTime, db, utcnow

ACCOUNT_KINDS = ("resident", "issuer", "store", "sink")
TRANSFER_KINDS = ("service", "deed", "deduction", "redemption", "refund", "expiry", "reversal", "adjustment")
ENTRY_KINDS = ("service", "deed", "deduction", "redemption", "void", "reversal", "adjustment", "expiry", "refund")


GENESIS = "0" * 64

# Ids come from URLs and forms: one beyond what an Integer key holds finds nothing (never a 500).
MAX_ID = 2**31 - 1


def fits_id(value: int) -> bool:
    return 0 < value <= MAX_ID


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Account(db.Model):
    """A ledger account. Owners: a user (resident), a department or region (issuer), a store, or
    the system (sinks such as expiry). Its balance is a cache of its transfers, moved only by
    `points.ledger`."""

    __tablename__ = "account"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    owner_type: Mapped[str] = mapped_column(sa.String(16))
    owner_id: Mapped[int] = mapped_column(sa.Integer)
    balance: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # What corrections took back that the resident could not pay (sum of open `Debt` rows); later
    # credits pay it first. A resident with a debt never holds spendable points.
    debt: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    # The anchor of the resident's archive chain: a deleted or rewritten tail no longer matches.
    archive_count: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    archive_head: Mapped[str] = mapped_column(sa.String(64), default=GENESIS, server_default=GENESIS)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("kind", "owner_type", "owner_id"),
        sa.CheckConstraint(_in("kind", ACCOUNT_KINDS), name="kind"),
        sa.CheckConstraint("kind <> 'resident' OR balance >= 0", name="resident_not_negative"),
        sa.CheckConstraint("debt >= 0 AND archive_count >= 0", name="debt_and_count"),
    )


class Debt(db.Model):
    """Points a reversal could not take back because the resident had spent them. Later credits
    to the resident pay it, oldest first, to the account the reversal owed (its creditor)."""

    __tablename__ = "debt"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("account.id", ondelete="RESTRICT"))
    creditor_account_id: Mapped[int] = mapped_column(sa.ForeignKey("account.id", ondelete="RESTRICT"))
    original_transfer_id: Mapped[int] = mapped_column(sa.ForeignKey("transfer.id", ondelete="RESTRICT"), unique=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    repaid: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("amount > 0 AND repaid >= 0 AND repaid <= amount", name="sane"),
        sa.Index("ix_debt_account", "account_id", "id"),
    )


class Transfer(db.Model):
    """One immutable movement of `amount` points from one account to another."""

    __tablename__ = "transfer"

    id: Mapped[int] = mapped_column(primary_key=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    from_account_id: Mapped[int] = mapped_column(sa.ForeignKey("account.id", ondelete="RESTRICT"), index=True)
    to_account_id: Mapped[int] = mapped_column(sa.ForeignKey("account.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    idempotency_key: Mapped[str] = mapped_column(sa.String(128), unique=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    cause_type: Mapped[str | None] = mapped_column(sa.String(32))
    cause_id: Mapped[str | None] = mapped_column(sa.String(64))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    reverses_id: Mapped[int | None] = mapped_column(sa.ForeignKey("transfer.id", ondelete="RESTRICT"), unique=True)
    details: Mapped[dict | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    from_account: Mapped[Account] = relationship(foreign_keys=[from_account_id])
    to_account: Mapped[Account] = relationship(foreign_keys=[to_account_id])

    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="positive"),
        sa.CheckConstraint("from_account_id <> to_account_id", name="two_accounts"),
        sa.CheckConstraint(_in("kind", TRANSFER_KINDS), name="kind"),
        sa.Index("ix_transfer_cause", "cause_type", "cause_id"),
    )


class ArchiveEntry(db.Model):
    """One line of a resident's moral e-archive, chained to the previous one by its hash."""

    __tablename__ = "archive_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    seq: Mapped[int] = mapped_column(sa.Integer)
    kind: Mapped[str] = mapped_column(sa.String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    summary: Mapped[str] = mapped_column(sa.String(255))
    points: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    service_minutes: Mapped[int] = mapped_column(sa.Integer, default=0)
    manual: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    details: Mapped[dict | None] = mapped_column(sa.JSON)
    transfer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("transfer.id", ondelete="RESTRICT"))
    cause_type: Mapped[str | None] = mapped_column(sa.String(32))
    cause_id: Mapped[str | None] = mapped_column(sa.String(64))
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))

    __table_args__ = (
        sa.UniqueConstraint("user_id", "seq"),
        sa.CheckConstraint(_in("kind", ENTRY_KINDS), name="kind"),
        sa.Index("ix_archive_entry_occurred", "user_id", "occurred_at"),
    )


class PointRule(db.Model):
    """How service time turns into points, per region (subtree) and category; versioned by row."""

    __tablename__ = "point_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int | None] = mapped_column(sa.ForeignKey("region.id", ondelete="RESTRICT"), index=True)
    category: Mapped[str | None] = mapped_column(sa.String(32))
    unit_minutes: Mapped[int] = mapped_column(sa.Integer, default=30)
    minimum_minutes: Mapped[int] = mapped_column(sa.Integer, default=30)
    daily_cap_minutes: Mapped[int] = mapped_column(sa.Integer, default=480)
    points_per_hour: Mapped[int] = mapped_column(sa.Integer, default=10)
    grace_before_minutes: Mapped[int] = mapped_column(sa.Integer, default=0)
    grace_after_minutes: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    region: Mapped[Region | None] = relationship()

    __table_args__ = (
        sa.CheckConstraint(
            "unit_minutes > 0 AND minimum_minutes >= 0 AND daily_cap_minutes > 0 "
            "AND points_per_hour >= 0 AND grace_before_minutes >= 0 AND grace_after_minutes >= 0",
            name="sane",
        ),
    )


class RegionPolicy(db.Model):
    """Per-region settings of the points domain: notice days for deeds and annual expiry."""

    __tablename__ = "region_policy"

    region_id: Mapped[int] = mapped_column(sa.ForeignKey("region.id", ondelete="CASCADE"), primary_key=True)
    notice_days: Mapped[int] = mapped_column(sa.Integer, default=3)
    expiry: Mapped[str] = mapped_column(sa.String(16), default="none")
    settlement_month: Mapped[int] = mapped_column(sa.Integer, default=1)
    settlement_day: Mapped[int] = mapped_column(sa.Integer, default=1)

    __table_args__ = (
        sa.CheckConstraint("expiry IN ('none', 'annual')", name="expiry"),
        sa.CheckConstraint(
            "notice_days >= 0 AND settlement_month BETWEEN 1 AND 12 AND settlement_day BETWEEN 1 AND 28", name="sane"
        ),
    )


class DeedType(db.Model):
    __tablename__ = "deed_type"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32))
    name: Mapped[str] = mapped_column(sa.String(64))
    points: Mapped[int] = mapped_column(sa.Integer)
    region_id: Mapped[int | None] = mapped_column(sa.ForeignKey("region.id", ondelete="RESTRICT"), index=True)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)

    region: Mapped[Region | None] = relationship()

    __table_args__ = (sa.UniqueConstraint("code", "region_id"), sa.CheckConstraint("points <> 0", name="nonzero"))


DEED_STATUSES = ("pending", "approved", "posted", "rejected", "voided")


class Deed(db.Model):
    """A good deed or a violation recorded by a grid worker, reviewed by someone else, shown on
    the public notice, then posted to the ledger."""

    __tablename__ = "deed"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    deed_type_id: Mapped[int] = mapped_column(sa.ForeignKey("deed_type.id", ondelete="RESTRICT"))
    points: Mapped[int] = mapped_column(sa.Integer)
    description: Mapped[str] = mapped_column(sa.Text)
    occurred_on: Mapped[date] = mapped_column(sa.Date)
    photo: Mapped[str | None] = mapped_column(sa.String(255))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending", index=True)
    region_id: Mapped[int] = mapped_column(sa.ForeignKey("region.id", ondelete="RESTRICT"), index=True)
    recorded_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_note: Mapped[str | None] = mapped_column(sa.String(255))
    notice_until: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    transfer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("transfer.id", ondelete="RESTRICT"))

    resident: Mapped[User] = relationship(foreign_keys=[resident_id])
    deed_type: Mapped[DeedType] = relationship()
    region: Mapped[Region] = relationship()
    recorded_by: Mapped[User] = relationship(foreign_keys=[recorded_by_id])
    objections: Mapped[list[DeedObjection]] = relationship(
        back_populates="deed", order_by="DeedObjection.id", lazy="selectin"
    )

    __table_args__ = (sa.CheckConstraint(_in("status", DEED_STATUSES), name="status"),)

    def scope_keys(self) -> set[tuple[str, int]]:
        return self.region.scope_keys()


OBJECTION_STATUSES = ("open", "upheld", "dismissed")


class DeedObjection(db.Model):
    """An objection raised during the public notice (公示期异议). While one is open the deed does not
    post; a reviewer upholds it (the deed is rejected) or dismisses it (the deed posts)."""

    __tablename__ = "deed_objection"

    id: Mapped[int] = mapped_column(primary_key=True)
    deed_id: Mapped[int] = mapped_column(sa.ForeignKey("deed.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    text: Mapped[str] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    resolved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_note: Mapped[str | None] = mapped_column(sa.String(255))

    deed: Mapped[Deed] = relationship(back_populates="objections")

    __table_args__ = (sa.CheckConstraint(_in("status", OBJECTION_STATUSES), name="status"),)


ADJUSTMENT_STATUSES = ("pending", "posted", "rejected")


class Adjustment(db.Model):
    """An admin's credit or debit of a resident's points, with a reason. Small ones post at once;
    larger ones wait for a second admin (four eyes). Never for the admin or their household."""

    __tablename__ = "adjustment"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    issuer_region_id: Mapped[int] = mapped_column(sa.ForeignKey("region.id", ondelete="RESTRICT"))
    points: Mapped[int] = mapped_column(sa.Integer)
    reason: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending", index=True)
    # The ledger key, derived from the request's Idempotency-Key: a repeat finds this row.
    key: Mapped[str] = mapped_column(sa.String(128), unique=True)
    requested_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(sa.String(255))
    entry_id: Mapped[int | None] = mapped_column(sa.ForeignKey("archive_entry.id", ondelete="RESTRICT"))

    resident: Mapped[User] = relationship(foreign_keys=[resident_id])
    requested_by: Mapped[User] = relationship(foreign_keys=[requested_by_id])
    entry: Mapped[ArchiveEntry | None] = relationship()

    __table_args__ = (
        sa.CheckConstraint(_in("status", ADJUSTMENT_STATUSES), name="status"),
        sa.CheckConstraint("points <> 0", name="nonzero"),
    )

    def scope_keys(self) -> set[tuple[str, int]]:
        return self.resident.scope_keys()


class Certificate(db.Model):
    """A service-record certificate (志愿服务记录证明) with a public verification code. It keeps what
    it certified: the minutes (all, and of them made up by hand), points, and the archive entries
    it covered (their seqs and a fingerprint), so that its check can tell when they changed.
    Certificates issued before they kept their entries have neither (NULL)."""

    __tablename__ = "certificate"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(16), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    period_from: Mapped[date] = mapped_column(sa.Date)
    period_to: Mapped[date] = mapped_column(sa.Date)
    service_minutes: Mapped[int] = mapped_column(sa.Integer)
    manual_minutes: Mapped[int] = mapped_column(sa.Integer)
    records: Mapped[int] = mapped_column(sa.Integer)
    points: Mapped[int] = mapped_column(sa.BigInteger)
    entry_seqs: Mapped[list | None] = mapped_column(sa.JSON)
    fingerprint: Mapped[str | None] = mapped_column(sa.String(64))
    head_hash: Mapped[str] = mapped_column(sa.String(64))
    issuer: Mapped[str] = mapped_column(sa.String(128))
    issued_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(foreign_keys=[user_id])


class ArchiveRoot(db.Model):
    """A published root hash over every resident's archive head (a Merkle tree, `points.roots`), as
    of `mark`: the archive entries whose ids are at most `mark`, which were all committed when it
    was taken and never change. Published with each monthly report; append-only (triggers made by
    the migration), so a later rewrite of any archive before it is found by recomputing it."""

    __tablename__ = "archive_root"

    id: Mapped[int] = mapped_column(primary_key=True)
    mark: Mapped[int] = mapped_column(sa.BigInteger, unique=True)
    root: Mapped[str] = mapped_column(sa.String(64))
    leaves: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
