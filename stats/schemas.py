"""What comes in and goes out of the statistics API (marshmallow)."""

from __future__ import annotations

from marshmallow import fields, validate, validates_schema
from marshmallow.exceptions import ValidationError

from core.api import AsciiDate, BaseSchema
from stats.queries import FIELDS

MAX_DAYS = 3660  # ten years: the longest period a table is asked for
MAX_MONTHS = 120
TABLES = (
    "summary",
    "by-region",
    "by-department",
    "by-store",
    "monthly",
    "rankings-volunteers",
    "rankings-households",
    "rankings-departments",
    "rankings-regions",
    "flags",
)


DATE_TEXT = "日期格式应为 YYYY-MM-DD"


class PeriodQuery(BaseSchema):
    region_code = fields.String(validate=validate.Length(min=1, max=32))
    from_ = AsciiDate(data_key="from", error_messages={"invalid": DATE_TEXT})
    to = AsciiDate(error_messages={"invalid": DATE_TEXT})

    @validates_schema
    def _period(self, data, **kwargs):
        first, last = data.get("from_"), data.get("to")
        for name, day in (("from", first), ("to", last)):
            if day is not None and not 2000 <= day.year <= 2100:
                raise ValidationError({name: ["日期须在 2000–2100 年之间"]})
        if first and last:
            if first > last:
                raise ValidationError({"from": ["开始日期不能晚于结束日期"]})
            if (last - first).days > MAX_DAYS:
                raise ValidationError({"from": ["统计期间最长十年"]})


class TableQuery(PeriodQuery):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=100, validate=validate.Range(min=1, max=100))


class RankingQuery(PeriodQuery):
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100, error="名次数须在 1–100 之间"))
    order = fields.String(load_default="points", validate=validate.OneOf(("points", "service_hours")))
    level = fields.String(validate=validate.OneOf(("township", "village", "grid")))


class ExportQuery(RankingQuery):
    table = fields.String(required=True, validate=validate.OneOf(TABLES), error_messages={"required": "必填"})
    format = fields.String(load_default="csv", validate=validate.OneOf(("csv", "xlsx")))

    @validates_schema
    def _flags_short(self, data, **kwargs):
        first, last = data.get("from_"), data.get("to")
        if data.get("table") == "flags" and first and last and (last - first).days > 366:
            raise ValidationError({"from": ["异常线索一次最多查一年"]})


def _figure_fields() -> dict[str, fields.Field]:
    out: dict[str, fields.Field] = {}
    for name, header in FIELDS:
        kind = fields.Float if name.endswith(("_hours", "_rate")) else fields.Integer
        out[name] = kind(allow_none=True, metadata={"description": header})
    return out


FiguresSchema = BaseSchema.from_dict(_figure_fields(), name="FiguresSchema")


class ContextSchema(BaseSchema):
    region_code = fields.String()
    region_name = fields.String()
    from_ = fields.String(data_key="from")
    to = fields.String()
    as_of = fields.String(allow_none=True, metadata={"description": "the rollups' time (ISO 8601)"})


SummarySchema = ContextSchema.from_dict(_figure_fields(), name="SummarySchema")

RegionRowSchema = BaseSchema.from_dict(
    {
        "region_code": fields.String(),
        "name": fields.String(),
        "level": fields.String(),
        "suppressed": fields.Boolean(metadata={"description": "a group under 5 people: figures withheld"}),
        **_figure_fields(),
    },
    name="RegionRowSchema",
)
DepartmentRowSchema = BaseSchema.from_dict(
    {
        "department_id": fields.Integer(),
        "name": fields.String(),
        "region_code": fields.String(),
        "suppressed": fields.Boolean(),
        **_figure_fields(),
    },
    name="DepartmentRowSchema",
)
StoreRowSchema = BaseSchema.from_dict(
    {
        "store_id": fields.Integer(),
        "name": fields.String(),
        "region_code": fields.String(),
        "region_name": fields.String(),
        "redemptions": fields.Integer(),
        "voided": fields.Integer(),
        "points_redeemed": fields.Integer(),
        "goods_out": fields.Integer(),
    },
    name="StoreRowSchema",
)
MonthRowSchema = BaseSchema.from_dict({"month": fields.String(), **_figure_fields()}, name="MonthRowSchema")


class _Table(ContextSchema):
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


class RegionTableSchema(_Table):
    items = fields.List(fields.Nested(RegionRowSchema))


class DepartmentTableSchema(_Table):
    items = fields.List(fields.Nested(DepartmentRowSchema))


class StoreTableSchema(_Table):
    items = fields.List(fields.Nested(StoreRowSchema))


class MonthTableSchema(_Table):
    items = fields.List(fields.Nested(MonthRowSchema))


class FlagQuery(TableQuery):
    @validates_schema
    def _short(self, data, **kwargs):
        first, last = data.get("from_"), data.get("to")
        if first and last and (last - first).days > 366:
            raise ValidationError({"from": ["异常线索一次最多查一年"]})


class RankingRowSchema(BaseSchema):
    rank = fields.Integer()
    id = fields.Integer()
    user_id = fields.Integer(metadata={"description": "volunteers only"})
    code = fields.String(metadata={"description": "regions only"})
    name = fields.String(metadata={"description": "masked unless the person consented; a household's number"})
    service_hours = fields.Float()
    points = fields.Integer()
    people = fields.Integer(metadata={"description": "how many residents make up the group (not for volunteers)"})


class LinkSchema(BaseSchema):
    type = fields.String()
    id = fields.Integer()
    href = fields.String()
    activity_id = fields.Integer()
    user_id = fields.Integer()


class FlagSchema(BaseSchema):
    kind = fields.String()
    title = fields.String()
    subject = fields.Dict()
    count = fields.Integer()
    detail = fields.String()
    month = fields.String(metadata={"description": "YYYY-MM: flags count per calendar month"})
    links = fields.List(fields.Nested(LinkSchema))


class FlagTableSchema(_Table):
    items = fields.List(fields.Nested(FlagSchema))


class ReportQuery(BaseSchema):
    region_code = fields.String(validate=validate.Length(min=1, max=32))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class ReportSchema(BaseSchema):
    id = fields.Integer()
    region_code = fields.String()
    region_name = fields.Function(lambda r: r.region.name)
    month = fields.Function(lambda r: r.month_text, metadata={"description": "YYYY-MM"})
    figures = fields.Dict(metadata={"description": "summary, by_region, by_department"})
    rankings = fields.Dict(metadata={"description": "volunteers, households, departments, regions"})
    flags = fields.List(fields.Dict())
    archive_root = fields.String(metadata={"description": "Merkle root over every archive head (points.roots)"})
    archive_leaves = fields.Integer()
    archive_mark = fields.Integer(metadata={"description": "the root covers archive entries up to this id"})
    as_of = fields.DateTime()
    created_at = fields.DateTime()
