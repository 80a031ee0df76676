"""JSON routes for accounts, people and places (API.md "Auth and people"). Thin: load, call, dump."""

from __future__ import annotations

import json

from flask import Response, jsonify, request, url_for

from community import accounts, imports, privacy, queries, services, signin, totp, users
from community.messages import DETAILS
from community.schemas import (
    AdminUserSchema,
    ClosedSchema,
    CloseRequestSchema,
    CodeSchema,
    DepartmentQuery,
    DepartmentSchema,
    GrantRequestSchema,
    GrantSchema,
    ImportReportSchema,
    ImportRequestSchema,
    ImportTemplateQuery,
    PasswordResetCodeSchema,
    PasswordResetRequestSchema,
    RegionQuery,
    RegionSchema,
    RegisterSchema,
    RoleQuery,
    TokenRequestSchema,
    TokenSchema,
    UserChangeSchema,
    UserQuery,
    UserSchema,
)
from core import sheets
from core.api import Routes, paginate
from core.db import db, utcnow
from core.errors import DomainError, Forbidden, NotFound, problem
from core.qr import qr_png
from core.security import authorize

api = Routes()


@api.route(
    "/auth/register",
    "POST",
    body=RegisterSchema,
    response=UserSchema,
    status=201,
    auth=False,
    errors=(409,),
    tag="auth",
)
def register(user, data):
    """Register a resident (real name and phone)."""
    return accounts.register(now=utcnow(), **data)


@api.route(
    "/auth/token", "POST", body=TokenRequestSchema, response=TokenSchema, auth=False, errors=(401, 403, 429), tag="auth"
)
def token(user, data):
    """Exchange a phone and password for a bearer token (401 with the tries left; 429 until when).
    With a second factor on, `otp` too (401 `otp_required` / `otp_invalid`); an admin whose region
    requires one and who has not enrolled gets 403 `otp_enrolment_required` (enrol on the web page)."""
    now = utcnow()
    try:
        signed_in = signin.authenticate(
            data["phone"], data["password"], ip=request.remote_addr or "", now=now, otp=data.get("otp")
        )
    except (signin.BadCredentials, signin.BadCode, signin.OtpRequired) as refusal:
        return _problem_with(refusal, remaining_attempts=refusal.remaining_attempts)
    except signin.SignInRefused as refusal:
        return _problem_with(refusal, locked_until=refusal.until.isoformat())
    if signed_in.totp_secret is None and totp.required_for(signed_in):
        raise Forbidden("otp_enrolment_required", DETAILS["otp_enrolment_required"])
    value, expires_at = accounts.api_token(signed_in, now)
    return {"token": value, "expires_at": expires_at, "user": signed_in}


def _problem_with(error: DomainError, **fields) -> Response:
    """The usual problem+json, plus the numbers a client shows (tries left, the lock's end)."""
    response = problem(error.status, error.code, error.detail, title=error.title, headers=error.headers)
    response.set_data(json.dumps({**json.loads(response.get_data()), **fields}, ensure_ascii=False))
    return response


@api.route("/users/<int:user_id>/unlock", "POST", response=UserSchema, errors=(404,), tag="people")
def unlock_user(user, user_id):
    """End a resident's sign-in lock-out (admins over the resident's region)."""
    return signin.unlock(actor=user, user_id=user_id, now=utcnow())


@api.route("/users", query=UserQuery, response=AdminUserSchema, paged=True, tag="people")
def list_users(user, query):
    """Find people in the admin's regions by name, phone tail (last 4 digits) or volunteer number."""
    roots = services.admin_roots(user, query.get("region_code"))
    return paginate(queries.people_within(roots, text=query.get("q"), active=query.get("active")), query, db.session)


@api.route(
    "/users/<int:user_id>", "PATCH", body=UserChangeSchema, response=AdminUserSchema, errors=(404,), tag="people"
)
def change_user(user, user_id, data):
    """Deactivate (`active: false`: every token and session of the person ends) or reactivate."""
    return users.set_active(actor=user, user_id=user_id, active=data["active"], now=utcnow())


@api.route(
    "/users/<int:user_id>/password-reset",
    "POST",
    response=PasswordResetCodeSchema,
    status=201,
    errors=(404, 409),
    tag="people",
)
def reset_user_password(user, user_id):
    """A one-time code for the person to set a new password with, shown to the admin once (it is
    kept only as a hash). It expires, works once, and a newer code replaces it."""
    issued = users.issue_password_reset(actor=user, user_id=user_id, now=utcnow())
    payload = PasswordResetCodeSchema().dump(issued) | {"url": url_for("user_pages.password_reset", _external=True)}
    response = jsonify(payload)
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@api.route("/auth/password-reset", "POST", body=PasswordResetRequestSchema, auth=False, tag="auth")
def use_password_reset(user, data):
    """Set a new password with the one-time code an admin gave; the old password stops working."""
    users.reset_password(phone=data["phone"], code=data["code"], password=data["password"], now=utcnow())
    return {"status": "ok"}


@api.route("/me", response=UserSchema, tag="auth")
def me(user):
    """The signed-in user, with roles and balance."""
    return user


@api.route("/me/code", response=CodeSchema, tag="auth")
def my_code(user):
    """The personal QR payload: signed, changes every minute."""
    code, expires_at = accounts.personal_code(user, utcnow())
    return {"code": code, "expires_at": expires_at}


@api.route("/me/code.png", content_type="image/png", tag="auth")
def my_code_png(user):
    """The personal QR as a PNG image."""
    code, _ = accounts.personal_code(user, utcnow())
    response = Response(qr_png(code), mimetype="image/png")
    response.headers["Cache-Control"] = "no-store"
    return response


@api.route("/me/export", tag="auth")
def my_export(user):
    """My own data (PIPL): profile, sign-ups, attendances, archive, deeds, redemptions, messages."""
    return privacy.export(user, now=utcnow())


@api.route("/me/close", "POST", body=CloseRequestSchema, response=ClosedSchema, errors=(409,), tag="auth")
def close_account(user, data):
    """Close my account: personal data anonymized, records kept under a pseudonym (409 while
    something is open: an attendance not checked out, a make-up under review, a staff role)."""
    return privacy.close(user=user, password=data["password"], now=utcnow())


@api.route("/roles", "POST", body=GrantRequestSchema, response=GrantSchema, status=201, errors=(404, 409), tag="people")
def grant_role(user, data):
    """Grant a role with a scope (admins, within their own scope)."""
    return services.grant_role(actor=user, now=utcnow(), **data)


@api.route("/roles", query=RoleQuery, response=GrantSchema, paged=True, tag="people")
def list_roles(user, query):
    """Role grants inside the caller's admin scope."""
    authorize(user, "admin")
    roots = services.admin_regions(user, roles=("admin",))
    return paginate(queries.grants_within(roots, user_id=query.get("user_id")), query, db.session)


@api.route("/roles/<int:grant_id>", "DELETE", status=204, errors=(404,), tag="people")
def revoke_role(user, grant_id):
    """Revoke a role grant (admins, within their own scope)."""
    services.revoke_role(actor=user, grant_id=grant_id, now=utcnow())
    return Response(status=204)


@api.route("/regions", query=RegionQuery, response=RegionSchema, paged=True, auth=False, tag="people")
def list_regions(user, query):
    """Regions, filtered by parent, level, subtree or name (public: sign-up needs them)."""
    select = queries.region_search(
        parent_code=query.get("parent_code"),
        within_code=query.get("within"),
        level=query.get("level"),
        text=query.get("q"),
    )
    return paginate(select, query, db.session)


@api.route("/regions", "POST", body=RegionSchema, response=RegionSchema, status=201, errors=(409,), tag="people")
def create_region(user, data):
    """Add a region below one the admin manages."""
    return services.create_region(actor=user, now=utcnow(), **data)


@api.route("/regions/<code>", response=RegionSchema, auth=False, errors=(404,), tag="people")
def get_region(user, code):
    """One region by its code."""
    region = services.region_by_code(code)
    if region is None:
        raise NotFound("region_not_found")
    return region


@api.route("/departments", query=DepartmentQuery, response=DepartmentSchema, paged=True, auth=False, tag="people")
def list_departments(user, query):
    """Departments, optionally only those in a region's subtree."""
    select = queries.department_search(region_code=query.get("region_code"), text=query.get("q"))
    return paginate(select, query, db.session)


@api.route(
    "/departments", "POST", body=DepartmentSchema, response=DepartmentSchema, status=201, errors=(409,), tag="people"
)
def create_department(user, data):
    """Add a department in a region the admin manages."""
    return services.create_department(actor=user, now=utcnow(), **data)


@api.route("/imports", "POST", form=ImportRequestSchema, response=ImportReportSchema, errors=(409, 413), tag="people")
def post_import(user, data):
    """Import regions, departments, households or residents from .xlsx or .csv (dry run by default)."""
    authorize(user, "admin")
    upload = data["file"]
    report = imports.run(
        data["kind"], upload.stream, actor=user, dry_run=data["dry_run"], now=utcnow(), filename=upload.filename
    )
    return imports.as_dict(report)


@api.route("/imports/template", query=ImportTemplateQuery, content_type=sheets.XLSX_TYPE, tag="people")
def import_template(user, query):
    """An empty .xlsx with the columns of one kind of import."""
    authorize(user, "admin")
    kind = query["kind"]
    response = Response(imports.template(kind), mimetype=sheets.XLSX_TYPE)
    response.headers["Content-Disposition"] = f'attachment; filename="import-{kind}.xlsx"'
    return response
