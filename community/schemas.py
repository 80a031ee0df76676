"""What comes in and goes out of the people-and-places API (marshmallow)."""

from __future__ import annotations

from typing import ClassVar

from marshmallow import fields, validate

from community import pii
from community.importers import KINDS
from community.models import LEVEL_RANK, ROLES, SCOPE_TYPES
from community.services import scope_label
from core.api import AsciiDate, BaseSchema, PageQuery
from core.bounds import ID
from core.db import utcnow

REQUIRED = {"required": "必填"}


class RegisterSchema(BaseSchema):
    phone = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(max=20))
    name = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=32))
    password = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(max=128))
    region_code = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(max=32))
    id_number = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=18))
    guardian_consent = fields.Boolean(load_default=False)
    consent_public_name = fields.Boolean(load_default=False)


class TokenRequestSchema(BaseSchema):
    phone = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(max=20))
    password = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(max=128))
    otp = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=32),
        metadata={"description": "the 6-digit code of an authenticator app, or a recovery code"},
    )


def grant_scope_id(grant) -> str | int:
    return scope_label(grant)


class RoleOutSchema(BaseSchema):
    id = fields.Integer()
    role = fields.String()
    scope_type = fields.String()
    scope_id = fields.Function(grant_scope_id)


class ResidentOut(BaseSchema):
    """A person as the API and the pages show them: the phone masked (前3后4), the ID number never.

    The one list of what may be shown of a resident to someone else (an admin, reviewer, grid worker,
    clerk or organizer); each use takes the fields it shows with `only=` or a subclass's `exclude`.
    Output names are API.md's: `phone` is the masked phone, `region` the region's name, `household`
    the household's number.
    """

    id = fields.Integer()
    name = fields.String()
    phone = fields.Function(lambda user: pii.mask_phone(user.phone))
    volunteer_no = fields.String()
    region_code = fields.String()
    region = fields.Function(lambda user: user.region.name)
    household_id = fields.Integer(allow_none=True)
    household = fields.Function(lambda user: user.household.number if user.household else None, allow_none=True)


class UserSchema(ResidentOut):
    """A user as they see themselves (`/me`), or as an admin sees a resident of their region: the
    phone masked as API.md's `/me` has it, the ID number masked (前3后4)."""

    class Meta(ResidentOut.Meta):
        exclude = ("region", "household")

    id_number = fields.String(attribute="id_number_masked", allow_none=True)
    consent_public_name = fields.Boolean()
    roles = fields.Function(
        lambda user: RoleOutSchema(many=True, only=("role", "scope_type", "scope_id")).dump(user.grants)
    )
    balance = fields.Function(lambda user: balance_of(user))
    # The end of a sign-in lock-out while one stands, else null.
    locked_until = fields.Function(lambda user: locked_until(user), allow_none=True)
    created_at = fields.DateTime()


def locked_until(user) -> str | None:
    until = user.locked_until
    return until.isoformat() if until is not None and until > utcnow() else None


def balance_of(user) -> int:
    from community.balances import balance

    return balance(user)


class TokenSchema(BaseSchema):
    token = fields.String()
    expires_at = fields.DateTime()
    user = fields.Nested(UserSchema)


class CodeSchema(BaseSchema):
    code = fields.String()
    expires_at = fields.DateTime()


class CloseRequestSchema(BaseSchema):
    """Closing is for good: the resident confirms with their password."""

    password = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(max=128))


class ClosedSchema(BaseSchema):
    status = fields.Constant("closed")
    pseudonym = fields.String(attribute="name")
    closed_at = fields.DateTime()


class GrantRequestSchema(BaseSchema):
    user_id = fields.Integer(required=True, error_messages=REQUIRED, strict=True, validate=ID)
    role = fields.String(required=True, error_messages=REQUIRED, validate=validate.OneOf(ROLES))
    scope_type = fields.String(required=True, error_messages=REQUIRED, validate=validate.OneOf(SCOPE_TYPES))
    scope_id = fields.Raw(required=True, error_messages=REQUIRED)


class GrantSchema(RoleOutSchema):
    user_id = fields.Integer()
    created_at = fields.DateTime()


class RoleQuery(PageQuery):
    user_id = fields.Integer(validate=ID)


class RegionSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    code = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=2, max=32))
    name = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=64))
    level = fields.String(required=True, error_messages=REQUIRED, validate=validate.OneOf(list(LEVEL_RANK)))
    parent_code = fields.String(load_default=None, allow_none=True)


class RegionQuery(PageQuery):
    parent_code = fields.String()
    level = fields.String(validate=validate.OneOf(list(LEVEL_RANK)))
    within = fields.String(metadata={"description": "a region code: only its subtree"})
    q = fields.String(validate=validate.Length(max=64))


class DepartmentSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(min=1, max=64))
    region_code = fields.String(required=True, error_messages=REQUIRED)


class DepartmentQuery(PageQuery):
    region_code = fields.String(metadata={"description": "only departments in this region's subtree"})
    q = fields.String(validate=validate.Length(max=64))


# Imports (API.md "Administration and onboarding") ------------------------------------------------

IMPORT_KINDS = tuple(KINDS)


class UploadField(fields.Field):
    """A file of a multipart form: present and named, else "请选择文件"."""

    default_error_messages: ClassVar[dict[str, str]] = {"invalid": "请选择要导入的文件（.xlsx 或 .csv）"}

    def _deserialize(self, value, attr, data, **kwargs):
        if not hasattr(value, "stream") or not getattr(value, "filename", ""):
            raise self.make_error("invalid")
        return value


class ImportRequestSchema(BaseSchema):
    file = UploadField(
        required=True,
        error_messages={"required": "请选择要导入的文件（.xlsx 或 .csv）"},
        metadata={"type": "string", "format": "binary", "description": ".xlsx or .csv (UTF-8 or GBK)"},
    )
    kind = fields.String(
        required=True, error_messages=REQUIRED, validate=validate.OneOf(IMPORT_KINDS, error="导入类型无效")
    )
    dry_run = fields.Boolean(load_default=True, metadata={"description": "check only (default); false applies"})


class ImportErrorSchema(BaseSchema):
    row = fields.Integer(metadata={"description": "spreadsheet row number; the header is row 1"})
    column = fields.String()
    code = fields.String()
    message = fields.String()


class ImportReportSchema(BaseSchema):
    kind = fields.String()
    rows = fields.Integer()
    valid = fields.Integer()
    created = fields.Integer()
    updated = fields.Integer()
    skipped = fields.Integer()
    errors = fields.List(fields.Nested(ImportErrorSchema))
    error_count = fields.Integer(metadata={"description": "all bad rows' errors; `errors` lists at most 5,000"})
    dry_run = fields.Boolean()
    applied = fields.Boolean(metadata={"description": "true when a real run wrote the file"})


class ImportTemplateQuery(BaseSchema):
    kind = fields.String(
        required=True, error_messages=REQUIRED, validate=validate.OneOf(IMPORT_KINDS, error="导入类型无效")
    )


class UserQuery(PageQuery):
    q = fields.String(
        validate=validate.Length(max=64),
        metadata={"description": "a name (part of it), the last 4 digits of the phone, or a volunteer number"},
    )
    region_code = fields.String(validate=validate.Length(max=32), metadata={"description": "only this subtree"})
    active = fields.Boolean(metadata={"description": "only active (true) or deactivated (false) accounts"})


class AdminUserSchema(ResidentOut):
    """A person as an admin's list shows them: the phone masked, no balance (see the archive)."""

    class Meta(ResidentOut.Meta):
        exclude = ("region", "household_id", "household")

    region_name = fields.Function(lambda user: user.region.name)
    active = fields.Boolean()
    locked_until = fields.Function(lambda user: locked_until(user), allow_none=True)
    roles = fields.Function(
        lambda user: RoleOutSchema(many=True, only=("role", "scope_type", "scope_id")).dump(user.grants)
    )
    last_login_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    totp_enabled = fields.Function(lambda user: user.totp_secret is not None)


class UserChangeSchema(BaseSchema):
    active = fields.Boolean(required=True, error_messages={**REQUIRED, "invalid": "应为 true（启用）或 false（停用）"})


class PasswordResetCodeSchema(BaseSchema):
    """The one-time code, shown to the admin once: it is stored only as a hash."""

    user_id = fields.Function(lambda issued: issued.user.id)
    code = fields.String()
    expires_at = fields.DateTime()
    url = fields.String(metadata={"description": "the page where the resident sets a new password with it"})


class PasswordResetRequestSchema(BaseSchema):
    phone = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(max=20))
    code = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(max=16))
    password = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(max=128))


# The second factor and the audit log (community.totp, community.auditlog) ---------------------


class TotpStatusSchema(BaseSchema):
    enabled = fields.Boolean()
    enabled_at = fields.DateTime(allow_none=True)
    pending = fields.Boolean(metadata={"description": "an enrolment begun and not yet confirmed"})
    required = fields.Boolean(metadata={"description": "the caller is an admin whose region requires it"})
    recovery_codes_left = fields.Integer()


class TotpEnrolmentSchema(BaseSchema):
    secret = fields.String(metadata={"description": "base32, to type into an authenticator app"})
    otpauth_uri = fields.String(attribute="uri", metadata={"description": "the QR's content"})


class TotpCodeSchema(BaseSchema):
    code = fields.String(
        required=True,
        error_messages=REQUIRED,
        validate=validate.Length(min=1, max=32),
        metadata={"description": "a current 6-digit code (or, where a code proves who you are, a recovery code)"},
    )


class RecoveryCodesSchema(BaseSchema):
    recovery_codes = fields.List(fields.String(), metadata={"description": "shown once; each works once"})


class RegionSecuritySchema(BaseSchema):
    region_code = fields.Function(lambda rule: rule.region.code)
    admin_totp_required = fields.Boolean(attribute="required")
    own = fields.Boolean(allow_none=True, metadata={"description": "the region's own setting; null: inherited"})
    source_region_code = fields.Function(
        lambda rule: rule.source.code if rule.source else None,
        allow_none=True,
        metadata={"description": "the region whose setting applies; null: the default (not required)"},
    )


class RegionSecurityChangeSchema(BaseSchema):
    admin_totp_required = fields.Boolean(
        required=True,
        allow_none=True,
        error_messages={**REQUIRED, "invalid": "应为 true（要求）、false（不要求）或 null（沿用上级）"},
    )


class AuditQuery(PageQuery):
    actor = fields.String(validate=validate.Length(max=64), metadata={"description": "a user id, or part of a name"})
    action = fields.String(
        validate=validate.Length(max=64), metadata={"description": "an action, or a prefix ending in '.'"}
    )
    object_type = fields.String(validate=validate.Length(max=32))
    object_id = fields.String(validate=validate.Length(max=64))
    from_ = AsciiDate(data_key="from", error_messages={"invalid": "日期格式应为 YYYY-MM-DD"})
    to = AsciiDate(error_messages={"invalid": "日期格式应为 YYYY-MM-DD"})
    region_code = fields.String(validate=validate.Length(max=32))


class AuditExportQuery(AuditQuery):
    format = fields.String(load_default="csv", validate=validate.OneOf(["csv", "xlsx"]))


class AuditEntrySchema(BaseSchema):
    id = fields.Integer()
    at = fields.DateTime()
    actor_id = fields.Integer(allow_none=True)
    actor_name = fields.String(allow_none=True)
    action = fields.String()
    action_name = fields.String()
    object_type = fields.String()
    object_name = fields.String()
    object_id = fields.String(allow_none=True)
    region_code = fields.String(allow_none=True)
    region_name = fields.String(allow_none=True)
    before = fields.Raw(allow_none=True)
    after = fields.Raw(allow_none=True)
    ip = fields.String(allow_none=True)
