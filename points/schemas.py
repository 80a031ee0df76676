"""What comes in and goes out of the points API (marshmallow)."""

from __future__ import annotations

from marshmallow import fields, validate

from community import pii
from core.api import BaseSchema, PageQuery
from core.bounds import ID, POINTS_MAX

REQUIRED = {"required": "必填"}


class EntrySchema(BaseSchema):
    seq = fields.Integer()
    kind = fields.String()
    occurred_at = fields.DateTime()
    summary = fields.String()
    points = fields.Integer()
    service_minutes = fields.Integer()
    manual = fields.Boolean()
    explanation = fields.Function(lambda e: ((e.details or {}).get("credit") or {}).get("explanation"))
    hash = fields.String()
    prev_hash = fields.String()


class TotalsSchema(BaseSchema):
    service_hours = fields.Float()
    manual_hours = fields.Float()
    points_earned = fields.Integer()
    points_redeemed = fields.Integer()
    balance = fields.Integer()


class ResidentSchema(BaseSchema):
    id = fields.Integer()
    name = fields.String()
    volunteer_no = fields.String()
    region_code = fields.String()
    household_id = fields.Integer(allow_none=True)
    phone = fields.Function(lambda u: pii.mask_phone(u.phone))


class ArchiveSchema(BaseSchema):
    resident = fields.Nested(ResidentSchema)
    totals = fields.Nested(TotalsSchema)
    entries = fields.List(fields.Nested(EntrySchema))
    head_hash = fields.String()


class VerifySchema(BaseSchema):
    ok = fields.Boolean()
    entries = fields.Integer()
    first_bad_seq = fields.Integer(allow_none=True)


class DeedRequestSchema(BaseSchema):
    resident_id = fields.Integer(required=True, strict=True, error_messages=REQUIRED, validate=ID)
    deed_type = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=32))
    description = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=2000))
    occurred_on = fields.Date(required=True, error_messages={**REQUIRED, "invalid": "日期格式应为 YYYY-MM-DD"})


class ReviewSchema(BaseSchema):
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=255))


class DeedVoidSchema(BaseSchema):
    reason = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=255))


class ObjectionSchema(BaseSchema):
    text = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=500))


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


class DeedQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(["pending", "approved", "posted", "rejected", "voided"]))


class DeedTypeSchema(BaseSchema):
    code = fields.String()
    name = fields.String()
    points = fields.Integer()


class DeedTypeQuery(PageQuery):
    region_code = fields.String()


class AdjustmentSchema(BaseSchema):
    points = fields.Integer(
        required=True,
        strict=True,
        error_messages=REQUIRED,
        validate=validate.Range(min=-POINTS_MAX, max=POINTS_MAX, error=f"积分须在 ±{POINTS_MAX} 以内"),
    )
    reason = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=200))


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


class CertificateCheckSchema(BaseSchema):
    valid = fields.Boolean()
    code = fields.String()
    resident = fields.Nested(MaskedResidentSchema)
    period = fields.Nested(PeriodSchema)
    service_hours = fields.Float()
    manual_hours = fields.Float()
    records = fields.Integer()
    issuer = fields.String()
    issued_at = fields.String()


class CertificateSchema(BaseSchema):
    code = fields.String()
    url = fields.String()
    period_from = fields.Date(data_key="from")
    period_to = fields.Date(data_key="to")
    service_hours = fields.Function(lambda c: round(c.service_minutes / 60, 2))
