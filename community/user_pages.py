"""Pages for accounts an admin looks after (管理 › 用户): find people of their regions, deactivate
or reactivate an account, give a one-time password-reset code; and the page where a resident
sets a new password with that code. The same services as the API (`community.users`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, logout_user

from community import queries, services, users
from community.models import ROLE_NAMES
from community.schemas import AdminUserSchema, ResidentOut
from core import clock, paging
from core.db import db, utcnow
from core.errors import DomainError
from core.pages import refusals
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
    roots = mine = services.admin_roots(current_user)
    if region_code:
        # A region that is not theirs (or not a region) is said, and the list shows all of theirs.
        with refusals() as refused:
            roots = services.admin_roots(current_user, region_code)
        if refused.status != 200:
            region_code = None
    page = paging.page_of(queries.people_within(roots, text=q, active=status), request.args, db.session)
    now = utcnow()
    return render_template(
        "community/admin_users.html",
        page=replace(page, items=AdminUserSchema(many=True).dump(page.items)),
        # The lock-outs that still stand, by person: the admin lifts them here.
        locks={p.id: p.locked_until for p in page.items if p.locked_until is not None and p.locked_until > now},
        q=q,
        region_code=region_code,
        status=request.args.get("status", ""),
        regions=queries.region_choices(mine),
        role_names=ROLE_NAMES,
    )


@bp.post("/admin/users/<int:user_id>/active")
@login_required
def admin_set_active(user_id: int):
    _admin()
    active = request.form.get("active") == "1"
    with refusals():
        person = users.set_active(actor=current_user, user_id=user_id, active=active, now=utcnow())
        flash(f"已{'启用' if person.active else '停用'}「{person.name}」的账号", "success")
    return redirect(url_for("user_pages.admin_users", q=request.form.get("q", "")))


@bp.post("/admin/users/<int:user_id>/password-reset")
@login_required
def admin_password_reset(user_id: int):
    """Shows the code once, on this response only: never in a redirect, a flash (the session cookie)
    or a cache."""
    _admin()
    with refusals():
        issued = users.issue_password_reset(actor=current_user, user_id=user_id, now=utcnow())
        page = render_template(
            "community/admin_reset_code.html",
            person=ResidentOut(only=("name", "volunteer_no", "phone")).dump(issued.user),
            code=issued.code,
            expires_at=issued.expires_at,
            local=clock.local,
            q=request.form.get("q", ""),
        )
        return page, 200, {"Cache-Control": "no-store"}
    return redirect(url_for("user_pages.admin_users", q=request.form.get("q", "")))


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
