"""JSON routes for the second factor (`/me/totp…`, an admin's reset, the region rule) and the audit
log (`/audit-log`). Thin: load, call, dump (community.totp, community.auditlog)."""

from __future__ import annotations

from dataclasses import replace

from flask import Response, request

from community import auditlog, signin, totp
from community.schemas import (
    AdminUserSchema,
    AuditEntrySchema,
    AuditExportQuery,
    AuditQuery,
    RecoveryCodesSchema,
    RegionSecurityChangeSchema,
    RegionSecuritySchema,
    TotpCodeSchema,
    TotpEnrolmentSchema,
    TotpStatusSchema,
)
from community.services import region_by_code
from core.api import Routes, paginate
from core.db import db, utcnow
from core.errors import Invalid, NotFound
from core.security import authorize

api = Routes()

NO_STORE = {"Cache-Control": "no-store"}


def _prove(user, code: str, now) -> None:
    """The caller's own current code (counted like a sign-in): a wrong one is 422 `otp_invalid`
    with the tries left, not a 401 (the caller's token is fine)."""
    try:
        signin.confirm_code(user.id, code, ip=request.remote_addr or "", now=now)
    except signin.BadCode as wrong:
        raise Invalid("otp_invalid", wrong.detail, errors={"code": [wrong.detail]}) from wrong


def status_of(user) -> dict:
    return {
        "enabled": user.totp_secret is not None,
        "enabled_at": user.totp_enabled_at,
        "pending": user.totp_secret is None and user.totp_pending is not None,
        "required": totp.required_for(user),
        "recovery_codes_left": totp.recovery_codes_left(user) if user.totp_secret is not None else 0,
    }


@api.route("/me/totp", response=TotpStatusSchema, tag="auth")
def totp_status(user):
    """My second factor: on or off, since when, whether my region requires it, recovery codes left."""
    return status_of(user)


@api.route("/me/totp", "POST", response=TotpEnrolmentSchema, status=201, errors=(409,), tag="auth")
def totp_start(user):
    """Begin enrolment: a new secret and its otpauth URI (the QR). Nothing changes until a code
    from it is confirmed; a new start replaces an unconfirmed secret."""
    enrolment = totp.start(user, utcnow())
    return Response(TotpEnrolmentSchema().dumps(enrolment), status=201, mimetype="application/json", headers=NO_STORE)


@api.route("/me/totp/confirm", "POST", body=TotpCodeSchema, response=RecoveryCodesSchema, errors=(409, 422), tag="auth")
def totp_confirm(user, data):
    """Finish enrolment with a code from the authenticator; the recovery codes are shown once."""
    codes = totp.confirm(user, data["code"], utcnow())
    return Response(
        RecoveryCodesSchema().dumps({"recovery_codes": codes}), mimetype="application/json", headers=NO_STORE
    )


@api.route(
    "/me/totp/recovery-codes",
    "POST",
    body=TotpCodeSchema,
    response=RecoveryCodesSchema,
    status=201,
    errors=(409, 422, 429),
    tag="auth",
)
def totp_recovery_codes(user, data):
    """New recovery codes (the old ones stop working), proven with a current code; shown once."""
    now = utcnow()
    _prove(user, data["code"], now)
    codes = totp.regenerate(user, now)
    return Response(
        RecoveryCodesSchema().dumps({"recovery_codes": codes}),
        status=201,
        mimetype="application/json",
        headers=NO_STORE,
    )


@api.route(
    "/me/totp/disable", "POST", body=TotpCodeSchema, response=TotpStatusSchema, errors=(409, 422, 429), tag="auth"
)
def totp_disable(user, data):
    """Turn my second factor off, proven with a current or recovery code (wrong codes count toward
    the sign-in lock-out). An admin whose region requires it is signed out everywhere and must
    enrol again at the next sign-in."""
    now = utcnow()
    _prove(user, data["code"], now)
    return status_of(totp.disable(user, now, sign_out_if_required=True))


@api.route("/users/<int:user_id>/totp/reset", "POST", response=AdminUserSchema, errors=(404, 409), tag="people")
def reset_user_totp(user, user_id):
    """Turn a person's second factor off (a lost phone): admins over the person who outrank them."""
    return totp.reset(actor=user, user_id=user_id, now=utcnow())


@api.route("/regions/<code>/security", response=RegionSecuritySchema, errors=(404,), tag="people")
def region_security(user, code):
    """Whether admins in this region must use a second factor, and which region says so."""
    authorize(user, "admin")
    region = region_by_code(code)
    if region is None:
        raise NotFound("region_not_found")
    authorize(user, "admin", region, hide=True)
    return totp.rule_for(region)


@api.route(
    "/regions/<code>/security",
    "PUT",
    body=RegionSecurityChangeSchema,
    response=RegionSecuritySchema,
    errors=(404,),
    tag="people",
)
def set_region_security(user, code, data):
    """Require (true) or not (false) a second factor of the admins in this region's subtree, or
    inherit the parent's (null). Turning it on signs out the admins it binds who have not enrolled;
    a requirement set above can be lifted only by an admin over the region that set it."""
    return totp.set_rule(actor=user, region_code=code, required=data["admin_totp_required"], now=utcnow())


def _filters(query: dict) -> auditlog.Filters:
    return auditlog.Filters(
        actor=query.get("actor"),
        action=query.get("action"),
        object_type=query.get("object_type"),
        object_id=query.get("object_id"),
        first=query.get("from_"),
        last=query.get("to"),
        region_code=query.get("region_code"),
    )


@api.route("/audit-log", query=AuditQuery, response=AuditEntrySchema, paged=True, errors=(422,), tag="people")
def audit_log(user, query):
    """Audit entries about the regions the caller administers or reviews, newest first; filters by
    actor, action, target and local dates. Phone and ID numbers are masked."""
    page = paginate(auditlog.entry_ids(user, _filters(query)), query, db.session)
    return replace(page, items=auditlog.shown(page.items))


@api.route(
    "/audit-log/export",
    query=AuditExportQuery,
    content_type="text/csv",
    errors=(422,),
    tag="people",
)
def audit_log_export(user, query):
    """The same entries as a .csv (default) or .xlsx with Chinese headers (at most 50,000 rows)."""
    return auditlog.download(user, _filters(query), query["format"])
