"""Pages for residents and admins: sign-up, sign-in, my code, password, and region administration.

Thin like the API: read the form, call the same service, render. Service refusals come back as
field errors on the same page (a friendly message, never a 500).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import replace
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user

from community import accounts, imports, queries, services, signin
from community import privacy as rights
from community.balances import balance
from community.importers import KINDS
from community.models import LEVEL_NAMES, LEVEL_RANK, ROLE_NAMES, ROLE_SCOPES, Region
from community.schemas import ResidentOut
from core import clock, paging
from core.bounds import form_int
from core.db import db, utcnow
from core.errors import DomainError, Invalid, NotFound, RateLimited, Unauthorized
from core.pages import refusals
from core.qr import qr_png
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
        now = utcnow()
        try:
            user = signin.authenticate(
                form.get("phone", ""), form.get("password", ""), ip=request.remote_addr or "", now=now
            )
        except signin.OtpRequired as asked:
            # The password was right: the code comes next, on its own page (nothing signed in yet).
            session[PENDING] = {
                "uid": asked.user_id,
                "v": asked.token_version,
                "attempt": asked.attempt_id,
                "at": now.timestamp(),
                "next": request.args.get("next"),
            }
            return redirect(url_for("security_pages.login_code"))
        except (Unauthorized, RateLimited) as exc:
            refusal, headers = exc, exc.headers
        else:
            return complete_sign_in(user, request.args.get("next"))
    page = render_template(
        "community/login.html",
        form=form,
        refusal=refusal,
        remaining=getattr(refusal, "remaining_attempts", None),
        until=getattr(refusal, "until", None),
    )
    return page, (refusal.status if refusal else 200), headers


PENDING = "otp_login"  # the session key of a sign-in waiting for its second factor
ENROL = "otp_enrol"  # set while a signed-in admin must enrol before anything else


def complete_sign_in(user: Any, next_target: str | None) -> Response:
    """Sign `user` in; an admin whose region requires a second factor they lack goes to enrol."""
    from community import totp

    session.pop(PENDING, None)
    login_user(user)
    if user.totp_secret is None and totp.required_for(user):
        session[ENROL] = True
        flash("您所在地区要求管理员使用两步验证，请先完成绑定", "info")
        return redirect(url_for("security_pages.my_security"))
    session.pop(ENROL, None)
    return redirect(_safe_next(next_target))


@bp.post("/logout")
def logout():
    session.pop(PENDING, None)
    session.pop(ENROL, None)
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


@bp.get("/my/data")
@login_required
def my_data():
    """What we hold of me (PIPL): a summary, the JSON and .xlsx downloads, and closing the account."""
    document = rights.export(current_user, now=utcnow())
    # The points account is one summary row (its balance is shown), not a list of records.
    counts = [(title, len(document.get(name) or [])) for name, title, _ in rights.sections() if name != "account"]
    return render_template(
        "community/my_data.html", profile=document["profile"], counts=counts, balance=balance(current_user)
    )


@bp.get("/my/data.xlsx")
@login_required
def my_data_xlsx():
    document = rights.export(current_user, now=utcnow())
    name = f"moralcredit-{current_user.volunteer_no}-{clock.today():%Y%m%d}.xlsx"
    return Response(
        rights.workbook(document),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


@bp.route("/my/close", methods=["GET", "POST"])
@login_required
def close_account():
    """Close my account, for good: my password again, and that I understand what stays."""
    errors: dict[str, list[str]] = {}
    refusal: DomainError | None = None
    if request.method == "POST":
        if not request.form.get("understood"):
            errors["understood"] = ["请确认您已了解注销的后果"]
        else:
            try:
                rights.close(user=current_user, password=request.form.get("password", ""), now=utcnow())
            except Invalid as error:
                errors = error.field_errors()
            except DomainError as error:
                refusal = error
            else:
                logout_user()
                flash("账号已注销，您的个人信息已匿名化。感谢您的志愿服务！", "success")
                return redirect(url_for("community.home"))
    status = refusal.status if refusal else 422 if errors else 200
    page = render_template("community/close.html", errors=errors, refusal=refusal, balance=balance(current_user))
    return page, status


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


@bp.route("/admin/users/<int:user_id>/card", methods=["GET", "POST"])
@login_required
def resident_card(user_id: int):
    """A resident's printed card (for one without a phone), on A6 card or cut from A4; a new card
    voids the one before (lost, worn, or in the wrong hands)."""
    paper = "a4" if request.values.get("paper") == "a4" else "a6"
    person = accounts.card_holder(current_user, user_id)  # 403, or 404 outside the actor's regions
    if request.method == "POST":
        with refusals():
            person = accounts.issue_card(actor=current_user, user_id=user_id, now=utcnow())
            replaced = "，之前的卡已作废" if person.card_serial > 1 else ""
            flash(f"已为「{person.name}」发放第 {person.card_serial} 张会员卡{replaced}。请打印后交给本人。", "success")
        return redirect(url_for("community.resident_card", user_id=user_id, paper=paper))
    return render_template(
        "community/card.html", person=person, code=accounts.card_code(person), paper=paper, today=clock.today()
    )


@bp.get("/admin/users/<int:user_id>/card.png")
@login_required
def resident_card_png(user_id: int):
    code = accounts.card_code(accounts.card_holder(current_user, user_id))
    if code is None:
        raise NotFound()
    return Response(qr_png(code, box_size=8), mimetype="image/png", headers={"Cache-Control": "no-store"})


@bp.post("/admin/roles/<int:grant_id>/revoke")
@login_required
def admin_revoke_role(grant_id: int):
    _admin_roots()
    with refusals():
        services.revoke_role(actor=current_user, grant_id=grant_id, now=utcnow())
        flash("已撤销授权", "success")
    return redirect(url_for("community.admin_roles"))


# Imports -------------------------------------------------------------------------------------

IMPORT_KIND_NAMES = {"regions": "地区", "departments": "部门", "households": "户", "residents": "居民"}


@bp.route("/admin/imports", methods=["GET", "POST"])
@login_required
def admin_imports():
    """Upload a spreadsheet, read the dry run's report, then apply. The page's script asks for
    `application/x-ndjson` and gets the progress batch by batch and the report's HTML at the end;
    without the script the form posts and the report comes back on the page."""
    _admin_roots()
    if request.method == "GET":
        return _imports_page({"kind": request.args.get("kind", "residents")})
    form = request.form.to_dict()
    dry_run = form.get("dry_run", "1") != "0"
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _imports_page(form, errors={"file": ["请选择要导入的文件（.xlsx 或 .csv）"]}), 422
    if "application/x-ndjson" in request.headers.get("Accept", ""):
        return _streamed_import(form.get("kind", ""), upload, dry_run)
    try:
        report = imports.run(
            form.get("kind", ""), upload.stream, actor=current_user, dry_run=dry_run, now=utcnow(),
            filename=upload.filename,
        )  # fmt: skip
    except DomainError as error:
        return _imports_page(form, errors=error.field_errors()), error.status
    return _imports_page(form, report=report)


def _imports_page(form: dict[str, Any], *, report: Any = None, errors: dict | None = None) -> str:
    return render_template(
        "community/admin_imports.html",
        form=form,
        report=report,
        errors=errors or {},
        kinds=KINDS,
        kind_names=IMPORT_KIND_NAMES,
    )


def _streamed_import(kind: str, upload: Any, dry_run: bool) -> Response:
    """One JSON line per batch (`{"done", "total"}`), then `{"html"}`, the report as the page shows
    it (or `{"error"}`). The import runs while the lines are sent, in the request's context."""
    actor, filename = current_user._get_current_object(), upload.filename
    # Flask closes the request's files when the view returns, before the lines are sent: the
    # import reads a copy of its own.
    copy = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the response)
    shutil.copyfileobj(upload.stream, copy)
    copy.seek(0)

    def lines():
        work = imports.steps(kind, copy, actor=actor, dry_run=dry_run, now=utcnow(), filename=filename)
        try:
            while True:
                try:
                    done, total = next(work)
                except StopIteration as finished:
                    report = finished.value
                    break
                yield json.dumps({"done": done, "total": total}) + "\n"
        except DomainError as error:
            yield json.dumps({"error": error.text}, ensure_ascii=False) + "\n"
            return
        html = render_template("community/_import_report.html", report=report, kind_names=IMPORT_KIND_NAMES)
        yield json.dumps({"done": report.rows, "total": report.rows, "html": html}, ensure_ascii=False) + "\n"

    response = Response(stream_with_context(lines()), mimetype="application/x-ndjson")
    response.call_on_close(copy.close)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # a proxy passes each line on at once
    return response
