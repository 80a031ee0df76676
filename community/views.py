"""Pages for residents and admins: sign-up, sign-in, my code, password, and region administration.

Thin like the API: read the form, call the same service, render. Service refusals come back as
field errors on the same page (a friendly message, never a 500).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from community import accounts, queries, services, signin
from community.models import LEVEL_NAMES, LEVEL_RANK, ROLE_NAMES, ROLE_SCOPES, Region
from community.schemas import ResidentOut
from core import paging
from core.bounds import form_int
from core.db import db, utcnow
from core.errors import DomainError, RateLimited, Unauthorized
from core.pages import refusals
from core.security import authorize

bp = Blueprint("community", __name__)


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: only a path on this site, never an open redirect.

    Browsers drop tabs and newlines inside a URL and read a backslash as a slash, so a `next` of
    slash-tab-slash-host or slash-backslash-host leads to another site. A target with blanks or
    control characters, or one that (decoded, blanks dropped) starts with two slashes or carries a
    scheme or a host, falls back to the home page.
    """
    if not target or any(ch.isspace() or not ch.isprintable() for ch in target):
        return url_for("community.home")
    cleaned = "".join(ch for ch in unquote(target) if ch.isprintable() and not ch.isspace()).replace("\\", "/")
    parts = urlsplit(cleaned)
    if cleaned.startswith("/") and not cleaned.startswith("//") and not parts.scheme and not parts.netloc:
        return target
    return url_for("community.home")


@bp.get("/")
def home():
    from community.balances import balance

    user_balance = balance(current_user) if current_user.is_authenticated else 0
    return render_template("community/home.html", role_names=ROLE_NAMES, current_user_balance=user_balance)


@bp.get("/privacy")
def privacy():
    return render_template("community/privacy.html")


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    form: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        form = request.form.to_dict()
        if not form.get("agree"):
            errors["agree"] = ["请阅读并同意个人信息保护说明"]
        else:
            try:
                user = accounts.register(
                    phone=form.get("phone", ""),
                    name=form.get("name", ""),
                    password=form.get("password", ""),
                    region_code=form.get("region_code", ""),
                    id_number=form.get("id_number") or None,
                    guardian_consent=bool(form.get("guardian_consent")),
                    consent_public_name=bool(form.get("consent_public_name")),
                    now=utcnow(),
                )
            except DomainError as error:
                errors = error.field_errors()
            else:
                login_user(user)
                flash(f"注册成功！您的志愿者编号是 {user.volunteer_no}", "success")
                return redirect(url_for("community.home"))
    status = 422 if errors else 200
    return render_template("community/signup.html", form=form, errors=errors, regions=queries.leaf_regions()), status


@bp.route("/login", methods=["GET", "POST"])
def login():
    form: dict[str, Any] = {}
    refusal: DomainError | None = None
    headers: dict[str, str] = {}
    if request.method == "POST":
        form = request.form.to_dict()
        try:
            user = signin.authenticate(
                form.get("phone", ""), form.get("password", ""), ip=request.remote_addr or "", now=utcnow()
            )
        except (Unauthorized, RateLimited) as exc:
            refusal, headers = exc, exc.headers
        else:
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
    page = render_template(
        "community/login.html",
        form=form,
        refusal=refusal,
        remaining=getattr(refusal, "remaining_attempts", None),
        until=getattr(refusal, "until", None),
    )
    return page, (refusal.status if refusal else 200), headers


@bp.post("/logout")
def logout():
    logout_user()
    flash("您已安全退出", "info")
    return redirect(url_for("community.login"))


@bp.get("/my/code")
@login_required
def my_code():
    code, expires_at = accounts.personal_code(current_user, utcnow())
    return render_template("community/my_code.html", code=code, expires_at=expires_at)


@bp.get("/my/inbox")
@login_required
def inbox():
    from core.notify import inbox as messages

    return render_template("community/inbox.html", messages=messages(current_user.id))


@bp.route("/my/password", methods=["GET", "POST"])
@login_required
def change_password():
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            accounts.change_password(
                current_user,
                old=request.form.get("old_password", ""),
                new=request.form.get("new_password", ""),
                now=utcnow(),
            )
        except DomainError as error:
            errors = error.field_errors()
        else:
            logout_user()
            flash("密码已修改，请用新密码登录", "success")
            return redirect(url_for("community.login"))
    return render_template("community/password.html", errors=errors), (422 if errors else 200)


# Administration ------------------------------------------------------------------------------


def _admin_roots() -> list[Region]:
    authorize(current_user, "admin")
    return services.admin_regions(current_user, roles=("admin",))


@bp.get("/admin/")
@login_required
def admin_home():
    roots = _admin_roots()
    page = paging.page_of(queries.region_tree(roots), request.args, db.session, per_page=50)
    counts = queries.residents_per_region(page.items)
    return render_template(
        "community/admin_regions.html",
        roots=roots,
        page=page,
        parents=queries.region_choices(roots),
        counts=counts,
        level_names=LEVEL_NAMES,
        levels=list(LEVEL_RANK),
        errors={},
        form={},
    )


@bp.post("/admin/regions")
@login_required
def admin_create_region():
    _admin_roots()
    form = request.form.to_dict()
    with refusals():
        region = services.create_region(
            actor=current_user,
            code=form.get("code", ""),
            name=form.get("name", ""),
            level=form.get("level", ""),
            parent_code=form.get("parent_code") or None,
            now=utcnow(),
        )
        flash(f"已添加{region.level_name}「{region.name}」", "success")
    return redirect(url_for("community.admin_home"))


@bp.route("/admin/departments", methods=["GET", "POST"])
@login_required
def admin_departments():
    roots = _admin_roots()
    if request.method == "POST":
        with refusals():
            department = services.create_department(
                actor=current_user,
                name=request.form.get("name", ""),
                region_code=request.form.get("region_code", ""),
                now=utcnow(),
            )
            flash(f"已添加部门「{department.name}」", "success")
        return redirect(url_for("community.admin_departments"))
    page = paging.page_of(queries.department_tree(roots), request.args, db.session)
    regions = queries.regions_within(roots)
    return render_template("community/admin_departments.html", page=page, regions=regions)


@bp.route("/admin/roles", methods=["GET", "POST"])
@login_required
def admin_roles():
    roots = _admin_roots()
    if request.method == "POST":
        form = request.form
        with refusals("请选择用户"):
            user_id = form_int(form, "user_id", minimum=1, required=True, message="请选择用户")
            services.grant_role(
                actor=current_user,
                user_id=user_id,
                role=form.get("role", ""),
                scope_type=form.get("scope_type", ""),
                scope_id=form.get("scope_id", ""),
                now=utcnow(),
            )
            flash("授权成功", "success")
        return redirect(url_for("community.admin_roles", q=form.get("q", "")))
    q = request.args.get("q", "").strip()
    people = queries.find_people(roots, q) if q else []
    page = paging.page_of(queries.grants_within(roots), request.args, db.session)
    shown = ResidentOut(only=("id", "name", "phone", "region"))
    grants = replace(page, items=[(grant, shown.dump(grant.user)) for grant in page.items])
    now = utcnow()
    return render_template(
        "community/admin_roles.html",
        grants=grants,
        people=shown.dump(people, many=True),
        # The lock-outs that still stand, by person: the admin lifts them here.
        locks={p.id: p.locked_until for p in people if p.locked_until is not None and p.locked_until > now},
        q=q,
        regions=queries.regions_within(roots),
        departments=queries.departments_within(roots),
        role_names=ROLE_NAMES,
        role_scopes=ROLE_SCOPES,
        scope_label=services.scope_label,
    )


@bp.post("/admin/users/<int:user_id>/unlock")
@login_required
def admin_unlock_user(user_id: int):
    _admin_roots()
    with refusals():
        person = signin.unlock(actor=current_user, user_id=user_id, now=utcnow())
        flash(f"已解锁「{person.name}」的账号，可立即重新登录", "success")
    if request.form.get("back") == "users":
        return redirect(url_for("user_pages.admin_users", q=request.form.get("q", "")))
    return redirect(url_for("community.admin_roles", q=request.form.get("q", "")))


@bp.post("/admin/roles/<int:grant_id>/revoke")
@login_required
def admin_revoke_role(grant_id: int):
    _admin_roots()
    with refusals():
        services.revoke_role(actor=current_user, grant_id=grant_id, now=utcnow())
        flash("已撤销授权", "success")
    return redirect(url_for("community.admin_roles"))
