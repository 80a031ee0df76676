"""What comes in and goes out of the volunteer API (marshmallow)."""

from __future__ import annotations

from marshmallow import fields, validate

from community.schemas import ResidentOut
from core.api import BaseSchema, PageQuery
from core.bounds import CAPACITY_MAX, ID
from volunteer.models import CATEGORIES

REQUIRED = {"required": "必填"}
AWARE = {"invalid": "时间格式应为 ISO 8601，带时区，如 2026-05-01T09:00:00+08:00"}


class AwareDateTime(fields.AwareDateTime):
    """Times must carry an offset: a volunteer's 9 o'clock is not the server's."""

    def __init__(self, **kwargs):
        kwargs.setdefault("error_messages", {**REQUIRED, **AWARE, "naive": "时间须带时区，如 +08:00"})
        super().__init__(**kwargs)


class ActivityRequestSchema(BaseSchema):
    title = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=100))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    category = fields.String(
        required=True,
        error_messages=REQUIRED,
        validate=validate.OneOf(CATEGORIES, error="类别须为：" + "、".join(CATEGORIES)),
    )
    department_id = fields.Integer(required=True, strict=True, error_messages=REQUIRED, validate=ID)
    region_code = fields.String(required=True, error_messages=REQUIRED)
    address = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=200))
    starts_at = AwareDateTime(required=True)
    ends_at = AwareDateTime(required=True)
    signup_deadline = AwareDateTime(load_default=None, allow_none=True)
    capacity = fields.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        validate=validate.Range(min=1, max=CAPACITY_MAX, error=f"人数上限须为 1–{CAPACITY_MAX}"),
    )
    requires_approval = fields.Boolean(load_default=False)
    allow_walk_in = fields.Boolean(load_default=False)
    points_per_hour = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=0, max=100)
    )
    latitude = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=-90, max=90))
    longitude = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=-180, max=180))
    radius_m = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=10, max=10000))


class ActivityChangesSchema(ActivityRequestSchema):
    """An edit (PATCH): any of the fields above, the others left as they are."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, partial=True, **kwargs)


class ActivitySchema(BaseSchema):
    id = fields.Integer()
    title = fields.String()
    description = fields.String()
    category = fields.String()
    department_id = fields.Integer()
    department = fields.Function(lambda a: a.department.name)
    region_code = fields.Function(lambda a: a.region.code)
    address = fields.String()
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    signup_deadline = fields.DateTime(allow_none=True)
    capacity = fields.Integer(allow_none=True)
    requires_approval = fields.Boolean()
    allow_walk_in = fields.Boolean()
    points_per_hour = fields.Integer(allow_none=True)
    status = fields.String()
    signed_up = fields.Function(lambda a: getattr(a, "counts", {}).get("signed_up"))
    waitlisted = fields.Function(lambda a: getattr(a, "counts", {}).get("waitlisted"))
    pending = fields.Function(lambda a: getattr(a, "counts", {}).get("pending"))


class ActivityQuery(PageQuery):
    region_code = fields.String()
    status = fields.String(validate=validate.OneOf(["draft", "published", "cancelled", "finished", "closed"]))
    category = fields.String()
    q = fields.String(validate=validate.Length(max=50))
    from_ = fields.AwareDateTime(data_key="from", attribute="from", error_messages=AWARE)
    to = fields.AwareDateTime(error_messages=AWARE)


class SignupSchema(BaseSchema):
    id = fields.Integer()
    activity_id = fields.Integer()
    user_id = fields.Integer()
    name = fields.String()
    status = fields.String()
    walk_in = fields.Boolean()
    no_show = fields.Boolean()
    created_at = fields.DateTime()


class AttendanceSchema(BaseSchema):
    id = fields.Integer()
    activity_id = fields.Integer()
    user_id = fields.Integer()
    checked_in_at = fields.DateTime()
    checked_out_at = fields.DateTime(allow_none=True)
    status = fields.String()
    method_in = fields.String()
    method_out = fields.String(allow_none=True)
    manual = fields.Boolean()
    credited_minutes = fields.Integer()
    points = fields.Integer()
    makeup_minutes = fields.Integer(metadata={"description": "of credited_minutes, those added by hand (approved)"})
    review = fields.String(
        allow_none=True,
        metadata={"description": "null (no review needed), pending, approved or rejected: the four-eyes rule"},
    )
    proposed_in_at = fields.DateTime(allow_none=True)
    proposed_out_at = fields.DateTime(allow_none=True)
    activity_title = fields.Function(lambda a: a.activity.title)


class VolunteerSchema(ResidentOut):
    """Who was scanned in or out, as the kiosk shows them: the name and nothing more."""

    class Meta(ResidentOut.Meta):
        fields = ("id", "name")


class ScanResultSchema(BaseSchema):
    attendance = fields.Nested(AttendanceSchema)
    action = fields.String()
    volunteer = fields.Nested(VolunteerSchema)


class CheckinSchema(BaseSchema):
    token = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=200))


class PersonalScanSchema(BaseSchema):
    code = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=128))


class CorrectionSchema(BaseSchema):
    checked_in_at = AwareDateTime(required=True)
    checked_out_at = AwareDateTime(required=True)
    reason = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=255))


class ReasonSchema(BaseSchema):
    reason = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=255))


class ReviewNoteSchema(BaseSchema):
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=255))


class VenueCodeSchema(BaseSchema):
    url = fields.String()
    token = fields.String()
    expires_at = fields.DateTime()


class VenueCodeQuery(BaseSchema):
    mode = fields.String(load_default="screen", validate=validate.OneOf(["screen", "poster"]))


class LiveSchema(BaseSchema):
    inside = fields.Integer()
    checked_in = fields.Integer()
    signed_up = fields.Integer()
    latest = fields.List(fields.Dict())
