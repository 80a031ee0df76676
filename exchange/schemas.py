"""What comes in and goes out of the moral supermarket API (marshmallow)."""

from __future__ import annotations

from flask import url_for
from marshmallow import ValidationError, fields, validate, validates_schema

from community.schemas import ResidentOut
from core.api import BaseSchema, PageQuery
from core.bounds import ID, POINTS_MAX, STOCK_MAX

REQUIRED = {"required": "必填"}


class StoreSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=64))
    region_code = fields.String(required=True, error_messages=REQUIRED)
    opening_hours = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))
    active = fields.Boolean(dump_only=True)


class StoreQuery(PageQuery):
    region_code = fields.String(metadata={"description": "only stores in this region's subtree"})


class ItemSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=64))
    unit = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=16))
    points_price = fields.Integer(
        required=True,
        strict=True,
        error_messages=REQUIRED,
        validate=validate.Range(min=1, max=POINTS_MAX, error=f"所需积分须为 1–{POINTS_MAX} 的整数"),
    )
    stock = fields.Integer(
        load_default=0, strict=True, validate=validate.Range(min=0, max=STOCK_MAX, error=f"库存须为 0–{STOCK_MAX}")
    )
    low_stock_threshold = fields.Integer(load_default=5, strict=True, validate=validate.Range(min=0, max=STOCK_MAX))
    monthly_limit = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1, max=STOCK_MAX)
    )
    category = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32))
    active = fields.Boolean(dump_only=True)
    low = fields.Boolean(dump_only=True)
    picture_url = fields.Method("_picture_url", dump_only=True)

    def _picture_url(self, item) -> str | None:
        if not getattr(item, "picture", None):
            return None
        return url_for("exchange.item_picture", store_id=item.store_id, item_id=item.id)


class ItemQuery(PageQuery):
    active = fields.Boolean()


class StockSchema(BaseSchema):
    delta = fields.Integer(
        strict=True,
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=-STOCK_MAX, max=STOCK_MAX, error=f"数量须在 ±{STOCK_MAX} 以内"),
    )
    reason = fields.String(
        required=True,
        error_messages=REQUIRED,
        validate=validate.OneOf(["purchase", "donation", "stocktake"], error="须为 purchase、donation 或 stocktake"),
    )
    donor = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=255))
    counted = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=0, max=STOCK_MAX)
    )

    @validates_schema
    def delta_or_count(self, data, **kwargs):
        if data.get("delta") is None and not (data.get("reason") == "stocktake" and data.get("counted") is not None):
            raise ValidationError("请填写数量", "delta")


class LineSchema(BaseSchema):
    item_id = fields.Integer(required=True, strict=True, error_messages=REQUIRED, validate=ID)
    qty = fields.Integer(
        required=True,
        strict=True,
        error_messages=REQUIRED,
        validate=validate.Range(min=1, max=99, error="数量须为 1–99"),
    )


class RedemptionRequestSchema(BaseSchema):
    code = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=128))
    resident_id = fields.Integer(load_default=None, allow_none=True, strict=True, validate=ID)
    lines = fields.List(
        fields.Nested(LineSchema),
        required=True,
        error_messages=REQUIRED,
        validate=validate.Length(min=1, max=50, error="请选择 1–50 种商品"),
    )

    @validates_schema
    def someone(self, data, **kwargs):
        if not data.get("code") and not data.get("resident_id"):
            raise ValidationError("请扫描居民会员码或选择居民", "code")


class LineOutSchema(BaseSchema):
    item_id = fields.Integer()
    name = fields.String()
    unit = fields.String()
    qty = fields.Integer()
    unit_points = fields.Integer()
    points = fields.Integer()


class RedemptionSchema(BaseSchema):
    id = fields.Integer()
    receipt_no = fields.String()
    store_id = fields.Integer()
    resident_id = fields.Integer()
    resident_name = fields.Function(lambda r: r.resident.name)
    total_points = fields.Integer()
    balance_after = fields.Integer()
    status = fields.String()
    lines = fields.List(fields.Nested(LineOutSchema))
    created_at = fields.DateTime()
    voided_at = fields.DateTime(allow_none=True)
    void_reason = fields.String(allow_none=True)
    flagged = fields.Boolean(metadata={"description": "for review: the resident holds a clerk role"})
    identified_by = fields.String(
        allow_none=True, metadata={"description": "code (personal code scanned) or lookup (by id from a search)"}
    )


class RedemptionVoidSchema(BaseSchema):
    reason = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=255))
    code = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=128),
        metadata={"description": "the resident's personal code; a clerk's void needs it, an admin's does not"},
    )


class RedemptionQuery(PageQuery):
    date = fields.Date(metadata={"description": "local date, default today"})


class DayTotalsSchema(BaseSchema):
    redemptions = fields.Integer()
    points = fields.Integer()
    goods = fields.Integer()
    voids = fields.Integer()


class RedemptionListSchema(BaseSchema):
    items = fields.List(fields.Nested(RedemptionSchema))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    date = fields.Date()
    totals = fields.Nested(DayTotalsSchema)


class ResidentLookupSchema(ResidentOut):
    """A resident as the counter finds them (API.md: region and household by name and number)."""

    class Meta(ResidentOut.Meta):
        exclude = ("region_code", "household_id")

    balance = fields.Function(lambda u: u.balance)


class LookupQuery(BaseSchema):
    code = fields.String(validate=validate.Length(max=128))
    name = fields.String(validate=validate.Length(max=32))
    phone_tail = fields.String(validate=validate.Regexp(r"^[0-9]{4}\Z", error="手机号后 4 位"))
