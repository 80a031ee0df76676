"""Tables of the moral supermarket: stores, items, the stock ledger, redemptions and their lines.

Stock is a cached sum of immutable stock movements and can never go below zero (CHECK); stock
movements are append-only (triggers made by the migration).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from community.models import Region, User
from core.db import UTCDateTime, db, utcnow

MOVEMENT_KINDS = ("purchase", "donation", "redemption", "void", "stocktake")


class Store(db.Model):
    __tablename__ = "store"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    region_id: Mapped[int] = mapped_column(sa.ForeignKey("region.id", ondelete="RESTRICT"), index=True)
    opening_hours: Mapped[str | None] = mapped_column(sa.String(64))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    region: Mapped[Region] = relationship()

    __table_args__ = (sa.UniqueConstraint("region_id", "name"),)

    def scope_keys(self) -> set[tuple[str, int]]:
        return {("store", self.id)} | self.region.scope_keys()

    @property
    def region_code(self) -> str:
        return self.region.code


class Item(db.Model):
    __tablename__ = "item"

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(sa.ForeignKey("store.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    category: Mapped[str | None] = mapped_column(sa.String(32))
    unit: Mapped[str] = mapped_column(sa.String(16))
    points_price: Mapped[int] = mapped_column(sa.Integer)
    stock: Mapped[int] = mapped_column(sa.Integer, default=0)
    low_stock_threshold: Mapped[int] = mapped_column(sa.Integer, default=5)
    monthly_limit: Mapped[int | None] = mapped_column(sa.Integer)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    picture: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    store: Mapped[Store] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("store_id", "name"),
        sa.CheckConstraint("stock >= 0", name="stock_not_negative"),
        sa.CheckConstraint("points_price > 0", name="price_positive"),
        sa.CheckConstraint("low_stock_threshold >= 0 AND (monthly_limit IS NULL OR monthly_limit > 0)", name="sane"),
    )

    def scope_keys(self) -> set[tuple[str, int]]:
        return self.store.scope_keys()

    @property
    def low(self) -> bool:
        return self.stock <= self.low_stock_threshold


class StockMovement(db.Model):
    """One immutable change of an item's stock, with what caused it."""

    __tablename__ = "stock_movement"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("item.id", ondelete="RESTRICT"), index=True)
    delta: Mapped[int] = mapped_column(sa.Integer)
    stock_after: Mapped[int] = mapped_column(sa.Integer)
    kind: Mapped[str] = mapped_column(sa.String(16))
    donor: Mapped[str | None] = mapped_column(sa.String(64))
    note: Mapped[str | None] = mapped_column(sa.String(255))
    counted: Mapped[int | None] = mapped_column(sa.Integer)
    redemption_id: Mapped[int | None] = mapped_column(sa.ForeignKey("redemption.id", ondelete="RESTRICT"), index=True)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    # A stock receipt's `stock:<item>:<actor>:<Idempotency-Key>`: the database lets a key apply once.
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(160), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    item: Mapped[Item] = relationship()

    __table_args__ = (
        sa.CheckConstraint("delta <> 0", name="nonzero"),
        sa.CheckConstraint("stock_after >= 0", name="stock_after_not_negative"),
        sa.CheckConstraint("kind IN ('purchase', 'donation', 'redemption', 'void', 'stocktake')", name="kind"),
    )


class Redemption(db.Model):
    __tablename__ = "redemption"

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(sa.ForeignKey("store.id", ondelete="RESTRICT"), index=True)
    resident_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    clerk_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    idempotency_key: Mapped[str] = mapped_column(sa.String(160), unique=True)
    total_points: Mapped[int] = mapped_column(sa.Integer)
    balance_after: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(16), default="completed")
    transfer_id: Mapped[int] = mapped_column(sa.ForeignKey("transfer.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    voided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    void_reason: Mapped[str | None] = mapped_column(sa.String(255))
    void_transfer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("transfer.id", ondelete="RESTRICT"))
    # For review: the resident holds a clerk role somewhere (a colleague redeemed for a clerk).
    flagged: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    # How the clerk identified the resident: 'code' (scanned personal code) or 'lookup' (by id from
    # a name search). NULL for redemptions made before this was recorded.
    identified_by: Mapped[str | None] = mapped_column(sa.String(8))

    store: Mapped[Store] = relationship()
    resident: Mapped[User] = relationship(foreign_keys=[resident_id])
    clerk: Mapped[User] = relationship(foreign_keys=[clerk_id])
    lines: Mapped[list[RedemptionLine]] = relationship(
        back_populates="redemption", lazy="selectin", order_by="RedemptionLine.id"
    )

    __table_args__ = (
        sa.CheckConstraint("status IN ('completed', 'voided')", name="status"),
        sa.CheckConstraint("total_points > 0", name="total_positive"),
    )

    def scope_keys(self) -> set[tuple[str, int]]:
        return self.store.scope_keys()

    @property
    def receipt_no(self) -> str:
        return f"{self.store_id:04d}-{self.id:08d}"


class RedemptionLine(db.Model):
    __tablename__ = "redemption_line"

    id: Mapped[int] = mapped_column(primary_key=True)
    redemption_id: Mapped[int] = mapped_column(sa.ForeignKey("redemption.id", ondelete="RESTRICT"), index=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("item.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    unit: Mapped[str] = mapped_column(sa.String(16))
    qty: Mapped[int] = mapped_column(sa.Integer)
    unit_points: Mapped[int] = mapped_column(sa.Integer)

    redemption: Mapped[Redemption] = relationship(back_populates="lines")

    __table_args__ = (sa.CheckConstraint("qty > 0 AND unit_points > 0", name="positive"),)

    @property
    def points(self) -> int:
        return self.qty * self.unit_points
