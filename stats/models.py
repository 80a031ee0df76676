"""Tables of the statistics domain: rollups, their refresh state and the monthly reports.

Rollups are sums over the other domains' rows, kept per local day (`grain = 'd'`) and per month
(`grain = 'm'`, `period` = the month's first day) so that any period is a few whole months plus at
most two runs of edge days. They are written only by `stats.refresh` and can always be rebuilt
from the rows they sum; dimension keys are 0 for "none" (a primary key cannot hold NULL). Monthly
reports are written once and the database refuses to change them (triggers made by the migration).
No foreign keys on rollups: they never hold a lock on another domain's rows.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from community.models import Region, User
from core.db import UTCDateTime, db, utcnow
from points.models import Deed

GRAINS = ("d", "m")

# Indexes on other domains' tables that only the rollups' day ranges read (one local day of
# registrations, of reviewed deeds): declared beside their one reader, made by this domain's migration.
sa.Index("ix_users_created_at", User.__table__.c.created_at)
sa.Index("ix_deed_reviewed_at", Deed.__table__.c.reviewed_at)


def _grain() -> sa.CheckConstraint:
    return sa.CheckConstraint("grain IN ('d', 'm')", name="grain")


class ServiceRollup(db.Model):
    """Volunteer service where it happened: by the activity's region, department and local start day."""

    __tablename__ = "stats_service"

    grain: Mapped[str] = mapped_column(sa.String(1), primary_key=True)
    period: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    region_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    department_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    activities: Mapped[int] = mapped_column(sa.Integer, default=0)
    activities_held: Mapped[int] = mapped_column(sa.Integer, default=0)
    participations: Mapped[int] = mapped_column(sa.Integer, default=0)
    service_minutes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    makeup_minutes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    points: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    signups: Mapped[int] = mapped_column(sa.Integer, default=0)
    no_shows: Mapped[int] = mapped_column(sa.Integer, default=0)

    __table_args__ = (_grain(),)


class LedgerRollup(db.Model):
    """Points moved to and from residents, by the resident's region, the issuing department (0 for
    a region issuer) or the store (0 for none), and the transfer's local day. Signed nets: what
    issuers credited less what corrections took back; deductions less their reversals; redemptions
    less refunds; expiry."""

    __tablename__ = "stats_ledger"

    grain: Mapped[str] = mapped_column(sa.String(1), primary_key=True)
    period: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    region_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    department_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    store_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    issued: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    deducted: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    redeemed: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    expired: Mapped[int] = mapped_column(sa.BigInteger, default=0)

    __table_args__ = (_grain(),)


class PersonRollup(db.Model):
    """One resident's service (by the activity's day and department) and the points issuers gave
    them net (by the transfer's day and issuing department), with where they live: active
    volunteers, rankings of volunteers, households, departments and villages."""

    __tablename__ = "stats_person"

    grain: Mapped[str] = mapped_column(sa.String(1), primary_key=True)
    period: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    department_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    region_id: Mapped[int] = mapped_column(sa.Integer)
    household_id: Mapped[int] = mapped_column(sa.Integer)
    participations: Mapped[int] = mapped_column(sa.Integer, default=0)
    service_minutes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    makeup_minutes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    points: Mapped[int] = mapped_column(sa.BigInteger, default=0)

    __table_args__ = (_grain(), sa.Index("ix_stats_person_region", "grain", "period", "region_id"))


class PeopleRollup(db.Model):
    """Registrations, by the resident's region and local day of registration."""

    __tablename__ = "stats_people"

    grain: Mapped[str] = mapped_column(sa.String(1), primary_key=True)
    period: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    region_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    registered: Mapped[int] = mapped_column(sa.Integer, default=0)

    __table_args__ = (_grain(),)


class StoreRollup(db.Model):
    """Moral supermarket counters, by store and the redemption's local day."""

    __tablename__ = "stats_store"

    grain: Mapped[str] = mapped_column(sa.String(1), primary_key=True)
    period: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    store_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    region_id: Mapped[int] = mapped_column(sa.Integer)
    redemptions: Mapped[int] = mapped_column(sa.Integer, default=0)
    voided: Mapped[int] = mapped_column(sa.Integer, default=0)
    points: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    goods: Mapped[int] = mapped_column(sa.BigInteger, default=0)

    __table_args__ = (_grain(),)


class DeedRollup(db.Model):
    """Reviewed and approved deeds and deductions, by the deed's region and the review's local day."""

    __tablename__ = "stats_deed"

    grain: Mapped[str] = mapped_column(sa.String(1), primary_key=True)
    period: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    region_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    deeds: Mapped[int] = mapped_column(sa.Integer, default=0)
    deductions: Mapped[int] = mapped_column(sa.Integer, default=0)
    points: Mapped[int] = mapped_column(sa.BigInteger, default=0)

    __table_args__ = (_grain(),)


AREA_MEASURES = (
    "activities",
    "activities_held",
    "participations",
    "service_minutes",
    "makeup_minutes",
    "signups",
    "no_shows",
    "issued",
    "deducted",
    "redeemed",
    "expired",
    "redemptions",
    "goods",
    "deeds",
    "deductions",
    "registered",
)
DEPARTMENT_MEASURES = AREA_MEASURES[:11]


def _measures(names: tuple[str, ...]) -> list[sa.Column]:
    return [sa.Column(name, sa.BigInteger, nullable=False, default=0) for name in (*names, "active")]


class AreaRollup(db.Model):
    """Every figure of a whole subtree: a row per region at every level of the tree (its own rows
    and all below it summed) and per day, month or calendar year (`grain` d, m, y), so a subtree's
    period is a few dozen rows and a table by child region reads the children's rows. `active`:
    distinct residents of the subtree who served in that day, month or year (not a sum)."""

    __table__ = sa.Table(
        "stats_area",
        db.metadata,
        sa.Column("region_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("grain", sa.String(1), primary_key=True),
        sa.Column("period", sa.Date, primary_key=True),
        *_measures(AREA_MEASURES),
        sa.CheckConstraint("grain IN ('d', 'm', 'y')", name="grain"),
        sa.Index("ix_stats_area_period", "grain", "period"),
    )


class DepartmentRollup(db.Model):
    """A department's service and the points it issued, per day, month or calendar year."""

    __table__ = sa.Table(
        "stats_department",
        db.metadata,
        sa.Column("department_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("grain", sa.String(1), primary_key=True),
        sa.Column("period", sa.Date, primary_key=True),
        *_measures(DEPARTMENT_MEASURES),
        sa.CheckConstraint("grain IN ('d', 'm', 'y')", name="grain"),
        sa.Index("ix_stats_department_period", "grain", "period"),
    )


class RankRollup(db.Model):
    """Rankings of a calendar month or year (`grain` m, y), made by the refresh. Volunteers and
    households: the best `RANKED` of each large region (`region_id`: the ranking's root), with their
    place by points and by hours. Departments and regions: every one, under its own region
    (`region_id`), read through the closure."""

    __tablename__ = "stats_rank"

    kind: Mapped[str] = mapped_column(sa.String(12), primary_key=True)
    grain: Mapped[str] = mapped_column(sa.String(1), primary_key=True)
    period: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    region_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    subject_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    minutes: Mapped[int] = mapped_column(sa.BigInteger)
    points: Mapped[int] = mapped_column(sa.BigInteger)
    people: Mapped[int] = mapped_column(sa.Integer)
    by_points: Mapped[int] = mapped_column(sa.Integer)
    by_hours: Mapped[int] = mapped_column(sa.Integer)

    __table_args__ = (
        sa.CheckConstraint("grain IN ('m', 'y')", name="grain"),
        sa.Index("ix_stats_rank_period", "grain", "period"),
        sa.Index("ix_stats_rank_points", "kind", "grain", "period", "region_id", "by_points"),
        sa.Index("ix_stats_rank_hours", "kind", "grain", "period", "region_id", "by_hours"),
    )


class FlagRow(db.Model):
    """An integrity flag of a calendar month, made by the refresh: what the API shows (`payload`,
    with its links), and the regions of the records behind it (`FlagRegion`) to find it by subtree."""

    __tablename__ = "stats_flag"

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[date] = mapped_column(sa.Date)
    kind: Mapped[str] = mapped_column(sa.String(32))
    position: Mapped[int] = mapped_column(sa.Integer)
    payload: Mapped[dict] = mapped_column(sa.JSON)

    __table_args__ = (sa.Index("ix_stats_flag_month", "month", "kind", "position"),)


class FlagRegion(db.Model):
    __tablename__ = "stats_flag_region"

    flag_id: Mapped[int] = mapped_column(
        sa.ForeignKey("stats_flag.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    region_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)

    __table_args__ = (sa.Index("ix_stats_flag_region_region", "region_id", "flag_id"),)


class RegionClosure(db.Model):
    """Every (ancestor, region) pair of the region tree, itself included: a subtree or a child's
    share of a rollup is one indexed join, on both databases."""

    __tablename__ = "stats_region_closure"

    ancestor_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    region_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)

    __table_args__ = (sa.Index("ix_stats_region_closure_region", "region_id"),)


class RefreshState(db.Model):
    """Where the incremental refresh stands on each source table (`last_id`: the highest id seen by
    the last run; `before_id`: by the run before it, from where the next run reads again, so that a
    row committed late under a lower id is not missed), and, in the row named `as_of`, when the last
    complete refresh started: every figure is as of that moment."""

    __tablename__ = "stats_state"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    last_id: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    before_id: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fingerprint: Mapped[str | None] = mapped_column(sa.String(64))


class Report(db.Model):
    """A monthly report (每月通报) of a county or city: written once by the job, never changed."""

    __tablename__ = "stats_report"

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(sa.ForeignKey("region.id", ondelete="RESTRICT"), index=True)
    month: Mapped[date] = mapped_column(sa.Date)
    figures: Mapped[dict] = mapped_column(sa.JSON)
    rankings: Mapped[dict] = mapped_column(sa.JSON)
    flags: Mapped[list] = mapped_column(sa.JSON)
    archive_root: Mapped[str] = mapped_column(sa.String(64))
    archive_leaves: Mapped[int] = mapped_column(sa.Integer)
    archive_mark: Mapped[int] = mapped_column(sa.BigInteger)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    region: Mapped[Region] = relationship()

    __table_args__ = (sa.UniqueConstraint("region_id", "month"),)

    def scope_keys(self) -> set[tuple[str, int]]:
        return self.region.scope_keys()

    @property
    def region_code(self) -> str:
        return self.region.code

    @property
    def month_text(self) -> str:
        return self.month.strftime("%Y-%m")
