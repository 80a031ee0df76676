"""Pages for the second factor and the audit log: the sign-in's code step, my account security
(enrol with a QR, recovery codes, turn off), an admin's reset and region rule (管理 › 两步验证),
and the audit log with filters and export (管理 › 审计日志). The same services as the API.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required

from community import auditlog, queries, services, signin, totp
from community.views import ENROL, PENDING, complete_sign_in
from core import clock, paging
from core.db import db, utcnow
from core.errors import DomainError, Forbidden, Invalid, NotFound, RateLimited, Unauthorized, wants_json
from core.pages import refusals
from core.qr import qr_png
from core.security import authorize

bp = Blueprint("security_pages", __name__)

PENDING_FOR = timedelta(minutes=5)
NO_STORE = {"Cache-Control": "no-store"}
# What an admin who must enrol may still reach (the gate below sends every other request here).
GATE_OPEN = {
    "security_pages.my_security",
    "security_pages.my_security_start",
    "security_pages.my_security_qr",
    "security_pages.my_security_confirm",
    "community.logout",
    "community.login",
    "static",
    "api.community_totp_status",
    "api.community_totp_start",
    "api.community_totp_confirm",
}


def enrolment_gate() -> Any:
    """Before each request: while an admin who must enrol has not, nothing else (403 for the API)."""
    if not session.get(ENROL) or request.endpoint in GATE_OPEN:
        return None
    if not current_user.is_authenticated or current_user.totp_secret is not None:
        session.pop(ENROL, None)
        return None
    if wants_json():
        raise Forbidden("otp_enrolment_required")
    flash("请先完成两步验证绑定", "info")
    return redirect(url_for("security_pages.my_security"))


# Signing in: the code step ----------------------------------------------------------------------


@bp.route("/login/code", methods=["GET", "POST"])
def login_code():
    pending = session.get(PENDING)
    now = utcnow()
    if not isinstance(pending, dict) or now.timestamp() - float(pending.get("at", 0)) > PENDING_FOR.total_seconds():
        session.pop(PENDING, None)
        flash("请重新输入手机号和密码", "info")
        return redirect(url_for("community.login"))
    refusal: DomainError | None = None
    headers: dict[str, str] = {}
    if request.method == "POST":
        try:
            user = signin.confirm_code(
                int(pending["uid"]),
                request.form.get("code", ""),
                ip=request.remote_addr or "",
                now=now,
                first_attempt=int(pending["attempt"]),
                token_version=int(pending.get("v", -1)),
            )
        except (Unauthorized, RateLimited) as exc:
            refusal, headers = exc, exc.headers
            if isinstance(exc, RateLimited):
                session.pop(PENDING, None)
        except DomainError as error:  # the second factor was reset, or the password changed, meanwhile
            session.pop(PENDING, None)
            flash(error.detail, "info")
            return redirect(url_for("community.login"))
        else:
            return complete_sign_in(user, pending.get("next"))
    page = render_template(
        "community/login_code.html", refusal=refusal, remaining=getattr(refusal, "remaining_attempts", None)
    )
    return page, (refusal.status if refusal else 200), headers


# My account security ------------------------------------------------------------------------------


@bp.get("/my/security")
@login_required
def my_security():
    return _security_page()


def _security_page(errors: dict[str, list[str]] | None = None, status: int = 200) -> Any:
    user = current_user
    enabled = user.totp_secret is not None
    page = render_template(
        "community/my_security.html",
        enabled=enabled,
        enabled_at=user.totp_enabled_at and clock.local(user.totp_enabled_at),
        enrolment=totp.pending(user),
        required=totp.required_for(user),
        must_enrol=bool(session.get(ENROL)),
        codes_left=totp.recovery_codes_left(user) if enabled else 0,
        errors=errors or {},
    )
    return page, status, NO_STORE


@bp.post("/my/security/start")
@login_required
def my_security_start():
    with refusals():
        totp.start(current_user, utcnow())
    return redirect(url_for("security_pages.my_security"))


@bp.get("/my/security/qr.png")
@login_required
def my_security_qr():
    enrolment = totp.pending(current_user)
    if enrolment is None:
        raise NotFound()
    return Response(qr_png(enrolment.uri, box_size=6), mimetype="image/png", headers=NO_STORE)


def _codes_page(codes: list[str], title: str, *, renewed: bool = False) -> Any:
    page = render_template("community/recovery_codes.html", codes=codes, title=title, renewed=renewed)
    return page, 200, NO_STORE


@bp.post("/my/security/confirm")
@login_required
def my_security_confirm():
    try:
        codes = totp.confirm(current_user, request.form.get("code", ""), utcnow())
    except Invalid as error:
        return _security_page(error.field_errors(), 422)
    except DomainError as error:
        flash(error.text, "error")
        return redirect(url_for("security_pages.my_security"))
    session.pop(ENROL, None)
    return _codes_page(codes, "两步验证已启用")


def _proven(code: str) -> bool:
    """Check the person's own code (counted like a sign-in); a refusal is flashed."""
    try:
        signin.confirm_code(current_user.id, code, ip=request.remote_addr or "", now=utcnow())
    except DomainError as error:
        flash(error.detail, "error")
        return False
    return True


@bp.post("/my/security/recovery-codes")
@login_required
def my_security_recovery_codes():
    if _proven(request.form.get("code", "")):
        with refusals():
            return _codes_page(totp.regenerate(current_user, utcnow()), "新的恢复码", renewed=True)
    return redirect(url_for("security_pages.my_security"))


@bp.post("/my/security/disable")
@login_required
def my_security_disable():
    if _proven(request.form.get("code", "")):
        with refusals():
            totp.disable(current_user, utcnow())
            flash("已关闭两步验证", "success")
            if totp.required_for(current_user):
                session[ENROL] = True
    return redirect(url_for("security_pages.my_security"))


# Administration ---------------------------------------------------------------------------------


@bp.post("/admin/users/<int:user_id>/totp-reset")
@login_required
def admin_reset_totp(user_id: int):
    authorize(current_user, "admin")
    with refusals():
        person = totp.reset(actor=current_user, user_id=user_id, now=utcnow())
        flash(f"已重置「{person.name}」的两步验证，其下次登录只需密码，并可重新绑定", "success")
    return redirect(url_for("user_pages.admin_users", q=request.form.get("q", "")))


SETTINGS = {"required": True, "not_required": False, "inherit": None}


@bp.route("/admin/security", methods=["GET", "POST"])
@login_required
def admin_security():
    authorize(current_user, "admin")
    roots = services.admin_regions(current_user, roles=("admin",))
    if request.method == "POST":
        setting = request.form.get("setting", "")
        with refusals():
            if setting not in SETTINGS:
                raise Invalid(errors={"setting": ["请选择是否要求"]})
            rule = totp.set_rule(
                actor=current_user,
                region_code=request.form.get("region_code", ""),
                required=SETTINGS[setting],
                now=utcnow(),
            )
            flash(f"已保存：{rule.region.name}{'要求' if rule.required else '不要求'}管理员使用两步验证", "success")
            if current_user.totp_secret is None and totp.required_for(current_user):
                session[ENROL] = True
                return redirect(url_for("security_pages.my_security"))
        return redirect(url_for("security_pages.admin_security"))
    return render_template(
        "community/admin_security.html", rules=totp.rules_within(roots), regions=queries.region_choices(roots)
    )


def _date(text: str | None) -> date | None:
    text = (text or "").strip()
    if not text:
        return None
    if not text.isascii():
        raise ValueError(text)
    return datetime.strptime(text, "%Y-%m-%d").date()


def _page_filters() -> tuple[dict[str, str], auditlog.Filters | None, dict[str, list[str]]]:
    """The page's filters as typed (kept on the page), read; with what could not be read."""
    keys = ("actor", "action", "object_type", "object_id", "from", "to", "region_code")
    form = {key: request.args.get(key, "").strip()[:64] for key in keys}
    errors: dict[str, list[str]] = {}
    dates: dict[str, date | None] = {}
    for key in ("from", "to"):
        try:
            dates[key] = _date(form[key])
        except ValueError:
            errors[key] = ["日期格式应为 YYYY-MM-DD"]
    if errors:
        return form, None, errors
    try:
        filters = auditlog.Filters(
            actor=form["actor"] or None,
            action=form["action"] or None,
            object_type=form["object_type"] or None,
            object_id=form["object_id"] or None,
            first=dates["from"],
            last=dates["to"],
            region_code=form["region_code"] or None,
        )
    except Invalid as error:
        return form, None, error.field_errors()
    return form, filters, errors


@bp.get("/admin/audit")
@login_required
def admin_audit():
    roots = auditlog.roots_of(current_user)
    form, filters, errors = _page_filters()
    page = None
    if filters is not None:
        try:
            select = auditlog.entry_ids(current_user, filters)
        except DomainError as error:
            errors, select = {"region_code": [error.detail]}, None
        if select is not None:
            page = paging.page_of(select, request.args, db.session)
            page = replace(page, items=auditlog.shown(page.items))
    return render_template(
        "community/admin_audit.html",
        page=page,
        form=form,
        errors=errors,
        actions=auditlog.action_choices(form["action"]),
        object_names=auditlog.OBJECT_NAMES,
        regions=queries.region_choices(roots),
        local=clock.local,
        admin=current_user.has_role("admin"),
    ), (422 if errors else 200)


@bp.get("/admin/audit/export")
@login_required
def admin_audit_export():
    auditlog.roots_of(current_user)
    fmt = "csv" if request.args.get("format") == "csv" else "xlsx"
    form, filters, errors = _page_filters()
    if filters is None:
        flash("；".join(m for ms in errors.values() for m in ms), "error")
        return redirect(url_for("security_pages.admin_audit", **{k: v for k, v in form.items() if v}))
    with refusals():
        return auditlog.download(current_user, filters, fmt)
    return redirect(url_for("security_pages.admin_audit", **{k: v for k, v in form.items() if v}))
