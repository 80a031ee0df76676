"""What comes in and goes out of the points API (marshmallow)."""

from __future__ import annotations

from marshmallow import fields, validate

from community.schemas import ResidentOut
from core.api import BaseSchema, PageQuery
from core.bounds import ID
from points.catalogue import POINTS_LIMIT

REQUIRED = {"required": "必填"}


def _credit_rule(entry) -> dict | None:
    """The rule a service credit used, as it was then (its version and values), in the contract's names."""
    rule = (((entry.details or {}).get("credit") or {}).get("rule")) or None
    if rule is None:
        return None
    return {
        "version": rule.get("version"),
        "points_per_hour": rule.get("points_per_hour"),
        "rounding_minutes": rule.get("unit_minutes"),
        "minimum_minutes": rule.get("minimum_minutes"),
        "daily_cap_minutes": rule.get("daily_cap_minutes"),
    }


class EntrySchema(BaseSchema):
    seq = fields.Integer()
    kind = fields.String()
    occurred_at = fields.DateTime()
    summary = fields.String()
    points = fields.Integer()
    service_minutes = fields.Integer()
    manual = fields.Boolean()
    explanation = fields.Function(lambda e: ((e.details or {}).get("credit") or {}).get("explanation"))
    rule = fields.Function(
        _credit_rule, allow_none=True, metadata={"description": "for a service credit: the rule version it used"}
    )
    hash = fields.String()
    prev_hash = fields.String()


class TotalsSchema(BaseSchema):
    service_hours = fields.Float()
    manual_hours = fields.Float()
    points_earned = fields.Integer()
    points_redeemed = fields.Integer()
    balance = fields.Integer()


class ArchiveSchema(BaseSchema):
    resident = fields.Nested(ResidentOut, exclude=("region", "household"))
    totals = fields.Nested(TotalsSchema)
    entries = fields.List(fields.Nested(EntrySchema))
    head_hash = fields.String()


class VerifySchema(BaseSchema):
    ok = fields.Boolean()
    entries = fields.Integer()
    first_bad_seq = fields.Integer(allow_none=True)
    problems = fields.List(fields.String(), metadata={"description": "what does not match, in words"})


class DeedRequestSchema(BaseSchema):
    resident_id = fields.Integer(required=True, strict=True, error_messages=REQUIRED, validate=ID)
    deed_type = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=32))
    description = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=2000))
    occurred_on = fields.Date(required=True, error_messages={**REQUIRED, "invalid": "日期格式应为 YYYY-MM-DD"})


class ReviewSchema(BaseSchema):
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=255))


class DeedVoidSchema(BaseSchema):
    reason = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=255))


class ObjectionRequestSchema(BaseSchema):
    reason = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=500))


class ObjectionResolveSchema(BaseSchema):
    decision = fields.String(
        required=True,
        error_messages=REQUIRED,
        validate=validate.OneOf(["upheld", "dismissed"], error="应为 upheld（异议成立）或 dismissed（异议不成立）"),
    )
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=255))


class DeedObjectionSchema(BaseSchema):
    """An objection as its deed's reviewers see it; the objector's identity is not shown."""

    id = fields.Integer()
    reason = fields.String(attribute="text")
    status = fields.String()
    note = fields.String(attribute="resolution_note", allow_none=True)
    created_at = fields.DateTime()
    resolved_at = fields.DateTime(allow_none=True)


class ObjectionSchema(DeedObjectionSchema):
    """An objection with its deed's id and the deed's status after the objection was filed or resolved."""

    deed_id = fields.Integer()
    deed_status = fields.Function(lambda o: o.deed.status)


class DeedSchema(BaseSchema):
    id = fields.Integer()
    resident_id = fields.Integer()
    deed_type = fields.Function(lambda d: d.deed_type.code)
    deed_type_name = fields.Function(lambda d: d.deed_type.name)
    points = fields.Integer()
    description = fields.String()
    occurred_on = fields.Date()
    status = fields.String()
    notice_until = fields.DateTime(allow_none=True)
    posted_at = fields.DateTime(allow_none=True)
    recorded_at = fields.DateTime()
    objections = fields.List(fields.Nested(DeedObjectionSchema))


class DeedQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(["pending", "approved", "posted", "rejected", "voided"]))


class DeedTypeSchema(BaseSchema):
    code = fields.String()
    name = fields.String()
    points = fields.Integer()
    region_code = fields.Function(
        lambda t: t.region.code if t.region_id is not None else None,
        metadata={"description": "the region that set this type; null for the catalogue every region shares"},
    )
    active = fields.Boolean()


class DeedTypeQuery(PageQuery):
    region_code = fields.String(validate=validate.Length(max=32))
    include_retired = fields.Boolean(load_default=False, metadata={"description": "retired types too"})


DEED_POINTS = validate.Range(
    min=-POINTS_LIMIT, max=POINTS_LIMIT, error=f"分值须为 ±1–{POINTS_LIMIT} 的整数，扣分用负数"
)


class DeedTypeRequestSchema(BaseSchema):
    """A deed type for a region: without `region_code`, the one region the admin administers."""

    code = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=32))
    name = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=64))
    points = fields.Integer(
        required=True,
        strict=True,
        error_messages=REQUIRED,
        validate=[DEED_POINTS, validate.NoneOf([0], error="分值不能为 0")],
    )
    region_code = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32))
    active = fields.Boolean(load_default=None, allow_none=True)


class DeedTypeChangesSchema(DeedTypeRequestSchema):
    """A change (PATCH): any of the fields above; the code is the one in the path."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, partial=True, **kwargs)


MAX_ADJUSTMENT = 10000


class AdjustmentRequestSchema(BaseSchema):
    points = fields.Integer(
        required=True,
        strict=True,
        error_messages=REQUIRED,
        validate=[
            validate.Range(min=-MAX_ADJUSTMENT, max=MAX_ADJUSTMENT, error=f"积分须在 ±{MAX_ADJUSTMENT} 以内"),
            validate.NoneOf([0], error="积分须为非零整数"),
        ],
    )
    reason = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=200))


class AdjustmentRejectSchema(BaseSchema):
    reason = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=255))


class AdjustmentSchema(BaseSchema):
    id = fields.Integer()
    resident_id = fields.Integer()
    points = fields.Integer()
    reason = fields.String()
    status = fields.String()
    requested_by_id = fields.Integer()
    requested_at = fields.DateTime()
    decided_by_id = fields.Integer(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    note = fields.String(attribute="decision_note", allow_none=True)
    entry = fields.Nested(EntrySchema, allow_none=True)


class AdjustmentQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(["pending", "posted", "rejected"]))


class CertificateRequestSchema(BaseSchema):
    period_from = fields.Date(data_key="from", required=True, error_messages=REQUIRED)
    period_to = fields.Date(data_key="to", required=True, error_messages=REQUIRED)


class PeriodSchema(BaseSchema):
    from_ = fields.String(data_key="from", attribute="from")
    to = fields.String()


class MaskedResidentSchema(BaseSchema):
    name = fields.String()
    volunteer_no = fields.String()
    id_number = fields.String(allow_none=True)


class CertificateFiguresSchema(BaseSchema):
    service_hours = fields.Float()
    scanned_hours = fields.Float()
    manual_hours = fields.Float()
    records = fields.Integer()


class CertificateCheckSchema(CertificateFiguresSchema):
    """The certified figures; `corrected` and the `current` figures once a later correction,
    annulment or cancellation changed what the certificate covered."""

    valid = fields.Boolean()
    code = fields.String()
    resident = fields.Nested(MaskedResidentSchema)
    period = fields.Nested(PeriodSchema)
    corrected = fields.Boolean()
    current = fields.Nested(CertificateFiguresSchema)
    issuer = fields.String()
    issued_at = fields.String()


class CertificateSchema(BaseSchema):
    code = fields.String()
    url = fields.String()
    period_from = fields.Date(data_key="from")
    period_to = fields.Date(data_key="to")
    service_hours = fields.Function(lambda c: round(c.service_minutes / 60, 2))


class PointRuleQuery(PageQuery):
    region_code = fields.String(
        validate=validate.Length(max=32), metadata={"description": "only this region's subtree (default: all yours)"}
    )


def _rule_source(view, which: str):
    source = getattr(view, f"{which}_from")
    return source.code if source is not None else None


class RegionRuleSchema(BaseSchema):
    """The duration → points rule and the policy in force in a region, and where each comes from:
    `rule_from`/`policy_from` name the region that set it (the region itself when `own_rule`/
    `own_policy`), null for the built-in defaults."""

    region_code = fields.Function(lambda v: v.region.code)
    region_name = fields.Function(lambda v: v.region.name)
    level = fields.Function(lambda v: v.region.level)
    points_per_hour = fields.Function(lambda v: v.rule.points_per_hour)
    rounding_minutes = fields.Function(lambda v: v.rule.unit_minutes)
    minimum_minutes = fields.Function(lambda v: v.rule.minimum_minutes)
    daily_cap_minutes = fields.Function(lambda v: v.rule.daily_cap_minutes)
    version = fields.Function(lambda v: v.rule.version, metadata={"description": "the rule row credits name"})
    expiry = fields.Function(lambda v: v.policy.expiry)
    settlement_month = fields.Function(lambda v: v.policy.settlement_month)
    settlement_day = fields.Function(lambda v: v.policy.settlement_day)
    notice_days = fields.Function(lambda v: v.policy.notice_days)
    own_rule = fields.Boolean()
    rule_from = fields.Function(lambda v: _rule_source(v, "rule"), allow_none=True)
    own_policy = fields.Boolean()
    policy_from = fields.Function(lambda v: _rule_source(v, "policy"), allow_none=True)


def _bounded(minimum: int, maximum: int, text: str) -> fields.Integer:
    return fields.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        validate=validate.Range(min=minimum, max=maximum, error=f"{text}须为 {minimum}–{maximum} 的整数"),
    )


class PointRuleRequestSchema(BaseSchema):
    """A region's rule and policy; a field left out keeps what is in force there now."""

    points_per_hour = _bounded(0, 100, "每小时积分")
    rounding_minutes = _bounded(1, 240, "取整单位（分钟）")
    minimum_minutes = _bounded(0, 480, "最少计时（分钟）")
    daily_cap_minutes = _bounded(1, 1440, "每日上限（分钟）")
    expiry = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(["none", "annual"], error="应为 none（不过期）或 annual（每年结算）"),
    )
    settlement_month = _bounded(1, 12, "结算月份")
    settlement_day = _bounded(1, 28, "结算日")
    notice_days = _bounded(0, 30, "公示天数")
