"""Tables of people and places.

Regions form a tree stored with a materialized path (`/1/5/23/`), so a whole subtree is one
indexed prefix query and the ancestors of a region are read off its path without a query. Phone
numbers are unique; an ID number is kept only as a keyed digest (for uniqueness) and a masked form.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import UTCDateTime, db, utcnow

# Level rank: a region sits strictly below its parent's rank. 村 and 社区 are peers.
LEVEL_RANK = {"province": 0, "city": 1, "county": 2, "township": 3, "village": 4, "community": 4, "grid": 5}
# A tree starts at a province, a city or a county (a county office may run on its own).
ROOT_LEVELS = ("province", "city", "county")
LEVEL_NAMES = {
    "province": "省",
    "city": "市",
    "county": "县/区",
    "township": "乡镇/街道",
    "village": "村",
    "community": "社区",
    "grid": "网格",
}
ROLES = ("organizer", "grid_worker", "reviewer", "admin", "clerk")
ROLE_NAMES = {
    "organizer": "活动组织者",
    "grid_worker": "网格员",
    "reviewer": "审核员",
    "admin": "管理员",
    "clerk": "超市店员",
}
SCOPE_TYPES = ("region", "department", "store")
# Which scopes each role may be granted with.
ROLE_SCOPES = {
    "organizer": ("department", "region"),
    "grid_worker": ("region",),
    "reviewer": ("region",),
    "admin": ("region",),
    "clerk": ("store",),
}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Region(db.Model):
    __tablename__ = "region"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    level: Mapped[str] = mapped_column(sa.String(16))
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("region.id", ondelete="RESTRICT"), index=True)
    path: Mapped[str] = mapped_column(sa.String(255))
    depth: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    parent: Mapped[Region | None] = relationship(remote_side=[id])

    __table_args__ = (
        sa.CheckConstraint(_in("level", tuple(LEVEL_RANK)), name="level"),
        sa.Index("ix_region_path", "path", postgresql_ops={"path": "varchar_pattern_ops"}),
    )

    @property
    def ancestor_ids(self) -> list[int]:
        return [int(part) for part in self.path.strip("/").split("/") if part]

    def scope_keys(self) -> set[tuple[str, int]]:
        return {("region", rid) for rid in self.ancestor_ids}

    def contains(self, other: Region) -> bool:
        return other.path.startswith(self.path)

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES.get(self.level, self.level)

    @property
    def parent_code(self) -> str | None:
        return self.parent.code if self.parent is not None else None


class Department(db.Model):
    __tablename__ = "department"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    region_id: Mapped[int] = mapped_column(sa.ForeignKey("region.id", ondelete="RESTRICT"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    region: Mapped[Region] = relationship()

    __table_args__ = (sa.UniqueConstraint("region_id", "name"),)

    def scope_keys(self) -> set[tuple[str, int]]:
        return {("department", self.id)} | self.region.scope_keys()

    @property
    def region_code(self) -> str:
        return self.region.code


class Household(db.Model):
    """A household (户); many villages rank and reward per household."""

    __tablename__ = "household"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(32), unique=True)
    region_id: Mapped[int] = mapped_column(sa.ForeignKey("region.id", ondelete="RESTRICT"), index=True)
    address: Mapped[str | None] = mapped_column(sa.String(128))
    head_name: Mapped[str | None] = mapped_column(sa.String(32))  # 户主姓名, as the roll gives it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    region: Mapped[Region] = relationship()
    members: Mapped[list[User]] = relationship(back_populates="household", order_by="User.id")

    def scope_keys(self) -> set[tuple[str, int]]:
        return self.region.scope_keys()


class User(UserMixin, db.Model):
    """A resident; staff are residents too, with role grants."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(sa.String(20), unique=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    volunteer_no: Mapped[str | None] = mapped_column(sa.String(20), unique=True)
    id_number_digest: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    id_number_masked: Mapped[str | None] = mapped_column(sa.String(32))
    region_id: Mapped[int] = mapped_column(sa.ForeignKey("region.id", ondelete="RESTRICT"), index=True)
    household_id: Mapped[int | None] = mapped_column(sa.ForeignKey("household.id", ondelete="SET NULL"), index=True)
    consent_public_name: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    guardian_consent: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    token_version: Mapped[int] = mapped_column(sa.Integer, default=0)
    # Sign-in limits (community.accounts): failures in the current window, the lock's end (kept
    # after it passes, to escalate a repeated lock), how many locks in a row, and when the count
    # last started afresh (a success, a lock, an admin's unlock).
    failed_logins: Mapped[int] = mapped_column(sa.Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lockouts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    failures_reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The printed personal card (for residents without a phone): the serial of the card now valid,
    # None before the first. Issuing a new card raises it, which voids every card printed before.
    card_serial: Mapped[int | None] = mapped_column(sa.Integer)
    # When the resident closed the account (PIPL): personal data anonymized, records kept.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The second factor (community.totp): the TOTP secret, encrypted, once enrolment is confirmed;
    # the one being enrolled until its first code proves it; the last time step accepted (a code
    # works once).
    totp_secret: Mapped[str | None] = mapped_column(sa.String(255))
    totp_pending: Mapped[str | None] = mapped_column(sa.String(255))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)

    region: Mapped[Region] = relationship()
    household: Mapped[Household | None] = relationship(back_populates="members")
    grants: Mapped[list[RoleGrant]] = relationship(
        back_populates="user", order_by="RoleGrant.id", foreign_keys="RoleGrant.user_id"
    )

    # Flask-Login: the session id carries the token version, so a password change ends sessions.
    def get_id(self) -> str:
        return f"{self.id}:{self.token_version}"

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def claimable(self) -> bool:
        """Imported from a roll and never signed up: no password yet, so whoever registers with
        this phone number and the same name takes the record over (community.accounts.register)."""
        return not self.password_hash

    def grant_keys(self, role: str) -> set[tuple[str, int]]:
        return {(g.scope_type, g.scope_id) for g in self.grants if g.role == role}

    def has_role(self, *roles: str) -> bool:
        return any(g.role in roles for g in self.grants)

    def scope_keys(self) -> set[tuple[str, int]]:
        return self.region.scope_keys()

    @property
    def region_code(self) -> str:
        return self.region.code


class RoleGrant(db.Model):
    __tablename__ = "role_grant"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(sa.String(16))
    scope_type: Mapped[str] = mapped_column(sa.String(16))
    # A region's, department's or store's id (the API shows a region by its code).
    scope_id: Mapped[int] = mapped_column(sa.Integer)
    granted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="grants", foreign_keys=[user_id])

    __table_args__ = (
        sa.UniqueConstraint("user_id", "role", "scope_type", "scope_id"),
        sa.CheckConstraint(_in("role", ROLES), name="role"),
        sa.CheckConstraint(_in("scope_type", SCOPE_TYPES), name="scope_type"),
        sa.Index("ix_role_grant_scope", "scope_type", "scope_id"),
    )


class LoginAttempt(db.Model):
    """Sign-in attempts, kept a day, for the sign-in limits (shared by every app process).

    An attempt is written as a failure before its password is checked and turned into a success
    afterwards, so that parallel guesses are counted before any of them is verified.
    """

    __tablename__ = "login_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ip: Mapped[str] = mapped_column(sa.String(64))
    phone: Mapped[str] = mapped_column(sa.String(20))
    ok: Mapped[bool] = mapped_column(sa.Boolean)

    __table_args__ = (
        sa.Index("ix_login_attempt_ip_at", "ip", "at"),
        sa.Index("ix_login_attempt_phone_at", "phone", "at"),
    )


class PasswordReset(db.Model):
    """A one-time code an admin gives a resident who cannot sign in (forgotten password, no phone
    of their own to receive an SMS). Only a hash of the code is kept; it works once, before
    `expires_at`, and a few wrong tries void it. A newer code for the same person voids older ones."""

    __tablename__ = "password_reset"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(256))
    issued_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when the code was used, replaced by a newer one, or worn out by wrong tries.
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failures: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")

    __table_args__ = (sa.CheckConstraint("failures >= 0", name="failures"),)


class RecoveryCode(db.Model):
    """A one-time code that stands in for a TOTP code (a lost phone); kept only as a keyed hash."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RegionSecurity(db.Model):
    """A region's sign-in rule for its subtree: whether admins must use a second factor. A region
    without a row inherits its nearest ancestor's (then: not required)."""

    __tablename__ = "region_security"

    region_id: Mapped[int] = mapped_column(sa.ForeignKey("region.id", ondelete="CASCADE"), primary_key=True)
    admin_totp_required: Mapped[bool] = mapped_column(sa.Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
