"""Pages for accounts an admin looks after (管理 › 用户): find people of their regions, deactivate
or reactivate an account, give a one-time password-reset code; and the page where a resident
sets a new password with that code. The same services as the API (`community.users`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, logout_user

from community import pii, services, users
from community.models import ROLE_NAMES
from core import clock, paging
from core.db import db, utcnow
from core.errors import DomainError
from core.security import authorize

bp = Blueprint("user_pages", __name__)


def _admin() -> None:
    authorize(current_user, "admin")


@bp.get("/admin/users")
@login_required
def admin_users():
    _admin()
    q = request.args.get("q", "").strip()[:64]
    region_code = request.args.get("region") or None
    status = {"active": True, "inactive": False}.get(request.args.get("status", ""))
    try:
        select = users.search(current_user, q=q, region_code=region_code, active=status)
    except DomainError as error:
        flash(error.text, "error")
        select = users.search(current_user, q=q, active=status)
        region_code = None
    return render_template(
        "community/admin_users.html",
        page=paging.page_of(select, request.args, db.session),
        q=q,
        region_code=region_code,
        status=request.args.get("status", ""),
        regions=services.region_choices(current_user),
        mask_phone=pii.mask_phone,
        role_names=ROLE_NAMES,
        now=utcnow(),
        local=clock.local,
    )


@bp.post("/admin/users/<int:user_id>/active")
@login_required
def admin_set_active(user_id: int):
    _admin()
    active = request.form.get("active") == "1"
    try:
        person = users.set_active(actor=current_user, user_id=user_id, active=active, now=utcnow())
    except DomainError as error:
        flash(error.text, "error")
    else:
        flash(f"已{'启用' if person.active else '停用'}「{person.name}」的账号", "success")
    return redirect(url_for("user_pages.admin_users", q=request.form.get("q", "")))


@bp.post("/admin/users/<int:user_id>/password-reset")
@login_required
def admin_password_reset(user_id: int):
    """Shows the code once, on this response only: never in a redirect, a flash (the session cookie)
    or a cache."""
    _admin()
    try:
        issued = users.issue_password_reset(actor=current_user, user_id=user_id, now=utcnow())
    except DomainError as error:
        flash(error.text, "error")
        return redirect(url_for("user_pages.admin_users", q=request.form.get("q", "")))
    page = render_template(
        "community/admin_reset_code.html",
        issued=issued,
        mask_phone=pii.mask_phone,
        local=clock.local,
        q=request.form.get("q", ""),
    )
    return page, 200, {"Cache-Control": "no-store"}


@bp.route("/password/reset", methods=["GET", "POST"])
def password_reset():
    """Where a resident sets a new password with the code an admin gave them."""
    form: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        form = {k: v for k, v in request.form.items() if k in ("phone", "code")}
        try:
            users.reset_password(
                phone=request.form.get("phone", ""),
                code=request.form.get("code", ""),
                password=request.form.get("password", ""),
                now=utcnow(),
            )
        except DomainError as error:
            errors = error.field_errors()
        else:
            logout_user()
            flash("密码已重新设置，请用新密码登录", "success")
            return redirect(url_for("community.login"))
    return render_template("community/password_reset.html", form=form, errors=errors), (422 if errors else 200)
