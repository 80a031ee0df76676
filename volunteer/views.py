"""Pages of volunteer service: browse and sign up, the scan landing page, my activities, and the
organizer's dashboard, form, management, live check-in screen, poster and kiosk."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from community.accounts import CARD_ISSUERS
from community.models import Department
from community.schemas import ResidentOut
from core import clock
from core.bounds import CAPACITY_MAX, form_int, parse_int
from core.db import db, utcnow
from core.errors import DomainError
from core.pages import refusals
from core.security import authorize, covers
from points import policies
from volunteer import activities, attendance, notices, queries, signups, tokens
from volunteer.models import CATEGORIES, Activity

bp = Blueprint("volunteer", __name__)

# Whom a proxy finds to sign up: enough to tell two namesakes apart, the phone masked.
PROXY_CANDIDATES = ResidentOut(only=("id", "name", "phone", "volunteer_no", "region"), many=True)


@bp.get("/activities")
def activity_list():
    """Published activities not yet over, soonest first."""
    q = request.args.get("q", "").strip()[:50]
    category = request.args.get("category")
    rows = queries.upcoming(current_user, now=utcnow(), category=category if category in CATEGORIES else None, text=q)
    return render_template(
        "volunteer/list.html",
        activities=rows,
        q=q,
        categories=CATEGORIES,
        counts=activities.counts_for([a.id for a in rows]),
    )


@bp.get("/activities/<int:activity_id>")
def activity_detail(activity_id: int):
    activity = activities.get(activity_id, viewer=current_user)
    mine = queries.signup_of(activity, current_user) if current_user.is_authenticated else None
    # An activity without its own rate earns what its region's rule gives (the rule in force now).
    rule = policies.rule_for(
        db.session, activity.region, activity.category, {"points_per_hour": activity.points_per_hour}
    )
    return render_template(
        "volunteer/detail.html",
        a=activity,
        counts=activities.counts(activity.id),
        mine=mine,
        organizer=covers(current_user, "organizer", activity),
        can_proxy=covers(current_user, signups.PROXIES),
        rule=rule,
    )


@bp.post("/activities/<int:activity_id>/signup")
@login_required
def signup(activity_id: int):
    with refusals():
        if request.form.get("action") == "cancel":
            signups.cancel(user=current_user, activity_id=activity_id, now=utcnow())
            flash("已取消报名", "info")
        else:
            row = signups.sign_up(user=current_user, activity_id=activity_id, now=utcnow())
            flash(
                {
                    "confirmed": "报名成功！活动开始前会提醒您",
                    "waitlisted": "名额已满，您已进入候补",
                    "pending": "已提交报名，等待组织者审核",
                }[row.status],
                "success",
            )
    return redirect(url_for("volunteer.activity_detail", activity_id=activity_id))


@bp.route("/activities/<int:activity_id>/proxy", methods=["GET", "POST"])
@login_required
def proxy_signup(activity_id: int):
    """代报名: an organizer of the activity or a grid worker finds a resident without a phone (by
    name, phone tail, volunteer number or their printed card) and signs them up on their behalf."""
    authorize(current_user, signups.PROXIES)
    activity = activities.get(activity_id, viewer=current_user)
    q = request.values.get("q", "").strip()[:128]
    if request.method == "POST":
        with refusals("请先查找并选择居民"):
            user_id = parse_int(request.form.get("user_id"), minimum=1)
            row = signups.sign_up_for(actor=current_user, activity_id=activity.id, user_id=user_id, now=utcnow())
            flash(f"已为「{row.user.name}」代报名：{notices.STATUS_TEXT[row.status]}。已通知本人。", "success")
        return redirect(url_for("volunteer.proxy_signup", activity_id=activity.id, q=q))
    found, problem = [], None
    try:
        found = queries.proxy_candidates(current_user, activity, q)
    except DomainError as error:
        problem = error.text
    return render_template(
        "volunteer/proxy.html",
        a=activity,
        q=q,
        found=PROXY_CANDIDATES.dump(found),
        problem=problem,
        status=queries.signup_statuses(activity, found),
        cards=[p.id for p in found if covers(current_user, CARD_ISSUERS, p)],
    )


@bp.route("/scan", methods=["GET", "POST"])
@login_required
def scan():
    """Where the venue QR leads. A camera or WeChat opens it directly and checks in; a request
    from another site (an embedded image, say) must press the button first."""
    token = request.values.get("t", "")
    if request.method == "GET" and request.headers.get("Sec-Fetch-Site") == "cross-site":
        return render_template("volunteer/scan.html", token=token, result=None, error=None)
    try:
        row, action = attendance.scan_venue_code(user=current_user, token=token, now=utcnow())
    except DomainError as error:
        return render_template("volunteer/scan.html", token=token, result=None, error=error.detail), error.status
    return render_template("volunteer/scan.html", token=token, result=row, action=action, error=None)


@bp.get("/my/activities")
@login_required
def my_activities():
    return render_template(
        "volunteer/mine.html",
        signups=queries.signups_of_user(current_user),
        present=queries.attendance_by_activity(current_user),
        rate=signups.attendance_rate(current_user.id),
    )


# Organizers -------------------------------------------------------------------------------------


def _departments() -> list[Department]:
    authorize(current_user, "organizer")
    return queries.organizer_departments(current_user)


def _when(form, name: str) -> datetime | None:
    """A datetime-local field (no zone, as the browser sends it), read in the service's time zone.
    A malformed value raises ValueError, which the pages turn into a friendly message."""
    value = form.get(name)
    return datetime.fromisoformat(value).replace(tzinfo=ZoneInfo(current_app.config["TIMEZONE"])) if value else None


def _form_values(form) -> dict:
    def when(name):
        return _when(form, name)

    def number(name, minimum, maximum):
        return form_int(form, name, minimum=minimum, maximum=maximum)

    return {
        "title": form.get("title", ""),
        "description": form.get("description", ""),
        "category": form.get("category", ""),
        "address": form.get("address", ""),
        "starts_at": when("starts_at"),
        "ends_at": when("ends_at"),
        "signup_deadline": when("signup_deadline"),
        "capacity": number("capacity", 1, CAPACITY_MAX),
        "points_per_hour": number("points_per_hour", 0, 100),
        "requires_approval": bool(form.get("requires_approval")),
        "allow_walk_in": bool(form.get("allow_walk_in")),
    }


@bp.get("/organizer/")
@login_required
def dashboard():
    departments = _departments()
    rows = queries.activities_of(departments)
    return render_template(
        "volunteer/dashboard.html",
        activities=rows,
        departments=departments,
        counts=activities.counts_for([a.id for a in rows]),
    )


@bp.route("/organizer/activities/new", methods=["GET", "POST"])
@login_required
def new_activity():
    departments = _departments()
    status = 200
    if request.method == "POST":
        with refusals("请填写正确的时间") as refused:
            values = _form_values(request.form)
            department_id = form_int(request.form, "department_id", minimum=1, required=True, message="请选择部门")
            department = db.session.get(Department, department_id)
            activity = activities.create(
                actor=current_user,
                department_id=department.id if department else 0,
                region_code=request.form.get("region_code") or (department.region.code if department else ""),
                now=utcnow(),
                **values,
            )
            flash("已保存为草稿，确认无误后请发布", "success")
            return redirect(url_for("volunteer.manage", activity_id=activity.id))
        status = refused.status
    page = render_template("volunteer/form.html", departments=departments, categories=CATEGORIES, form=request.form)
    return page, status


@bp.route("/organizer/activities/<int:activity_id>", methods=["GET", "POST"])
@login_required
def manage(activity_id: int):
    activity = activities.organized(current_user, activity_id)
    if request.method == "POST":
        form, now = request.form, utcnow()
        action = form.get("action")
        with refusals("请填写完整、正确的内容"):
            if action in ("publish", "cancel", "finish", "close"):
                getattr(activities, action)(actor=current_user, activity_id=activity.id, now=now)
            elif action in ("approve", "reject"):
                signups.decide(
                    actor=current_user,
                    activity_id=activity.id,
                    signup_id=parse_int(form.get("signup_id"), minimum=0),
                    approve=action == "approve",
                    now=now,
                )
            elif action == "correct":
                row = attendance.correct(
                    actor=current_user,
                    activity_id=activity.id,
                    user_id=parse_int(form.get("user_id"), minimum=0),
                    checked_in_at=_when(form, "checked_in_at"),
                    checked_out_at=_when(form, "checked_out_at"),
                    reason=form.get("reason", ""),
                    now=now,
                )
            elif action == "confirm":
                row = attendance.confirm(
                    actor=current_user,
                    activity_id=activity.id,
                    user_id=parse_int(form.get("user_id"), minimum=0),
                    now=now,
                )
            elif action == "annul":
                attendance.annul(
                    actor=current_user,
                    activity_id=activity.id,
                    user_id=parse_int(form.get("user_id"), minimum=0),
                    reason=form.get("reason", ""),
                    now=now,
                )
            else:
                raise ValueError(action)
            pending = action in ("correct", "confirm") and row.review == "pending"
            flash("已提交补录，待审核员审核通过后计入积分" if pending else DONE.get(action, "已保存"), "success")
        return redirect(url_for("volunteer.manage", activity_id=activity.id))
    rows = db.session.scalars(queries.signups_of(activity)).all()
    present = db.session.scalars(queries.attendances_of(activity)).all()
    return render_template(
        "volunteer/manage.html",
        a=activity,
        signups=rows,
        attendances=present,
        counts=activities.counts(activity.id),
        totals={"minutes": sum(p.credited_minutes for p in present), "points": sum(p.points for p in present)},
    )


# What the organizer is told after each action on the management page.
DONE = {
    "publish": "已发布，志愿者现在可以报名",
    "cancel": "已取消活动，已报名的志愿者会收到通知",
    "finish": "活动已结束，未到场的报名已记录",
    "close": "活动已关闭",
    "approve": "已通过报名",
    "reject": "已拒绝报名",
    "annul": "已作废该签到，积分已冲正",
}


def _as_form(activity: Activity) -> dict:
    """An activity as its edit form shows it (local times, to the minute)."""

    def when(value: datetime | None) -> str:
        return clock.local(value).strftime("%Y-%m-%dT%H:%M") if value else ""

    return {
        "title": activity.title,
        "description": activity.description,
        "category": activity.category,
        "address": activity.address,
        "starts_at": when(activity.starts_at),
        "ends_at": when(activity.ends_at),
        "signup_deadline": when(activity.signup_deadline),
        "capacity": activity.capacity or "",
        "points_per_hour": "" if activity.points_per_hour is None else activity.points_per_hour,
        "requires_approval": activity.requires_approval,
        "allow_walk_in": activity.allow_walk_in,
    }


def _changes(activity: Activity, values: dict) -> dict:
    """What the form really changes. Times compare to the minute the form shows, so re-saving an
    activity whose start has seconds (made through the API) does not count as moving it."""

    def same(key: str, value) -> bool:
        current = getattr(activity, key)
        if isinstance(current, datetime) and isinstance(value, datetime):
            return clock.local(current).replace(second=0, microsecond=0) == value
        return current == value

    return {k: v for k, v in values.items() if not same(k, v)}


@bp.route("/organizer/activities/<int:activity_id>/edit", methods=["GET", "POST"])
@login_required
def edit_activity(activity_id: int):
    """Edit a draft freely; a published activity too, its volunteers told of a new time or place.
    Once anyone checked in, its time, category and points stay as they were settled."""
    activity = activities.organized(current_user, activity_id)
    form: Any = _as_form(activity)
    status = 200
    if request.method == "POST":
        form = request.form
        with refusals("请填写正确的时间") as refused:
            changed = _changes(activity, _form_values(request.form))
            if changed:
                activities.update(actor=current_user, activity_id=activity.id, now=utcnow(), **changed)
            told = activity.status == "published" and set(changed) & set(activities.WHEN_AND_WHERE)
            flash(
                "已保存修改，已通知报名的志愿者" if told else ("已保存修改" if changed else "没有修改"),
                "success",
            )
            return redirect(url_for("volunteer.manage", activity_id=activity.id))
        status = refused.status
    page = render_template(
        "volunteer/form.html",
        departments=[activity.department],
        categories=CATEGORIES,
        form=form,
        editing=activity,
        settled=activities.has_attendance(activity),
    )
    return page, status


@bp.route("/reviewer/makeups", methods=["GET", "POST"])
@login_required
def makeups():
    """Make-ups waiting for a second person (the four-eyes rule): approve or reject each."""
    authorize(current_user, attendance.REVIEWERS)
    if request.method == "POST":
        form, now = request.form, utcnow()
        with refusals("请求有误，请刷新页面后重试"):
            activity_id = parse_int(form.get("activity_id"), minimum=1)
            user_id = parse_int(form.get("user_id"), minimum=1)
            if form.get("action") == "approve":
                attendance.approve(
                    actor=current_user, activity_id=activity_id, user_id=user_id, note=form.get("note"), now=now
                )
            elif form.get("action") == "reject":
                attendance.reject(
                    actor=current_user, activity_id=activity_id, user_id=user_id, reason=form.get("reason", ""), now=now
                )
            else:
                raise ValueError(form.get("action"))
            flash("已审核", "success")
        return redirect(url_for("volunteer.makeups"))
    return render_template("volunteer/makeups.html", rows=queries.pending_reviews(current_user, attendance.REVIEWERS))


@bp.get("/organizer/activities/<int:activity_id>/live")
@login_required
def live(activity_id: int):
    return render_template("volunteer/live.html", a=activities.organized(current_user, activity_id))


@bp.get("/organizer/activities/<int:activity_id>/poster")
@login_required
def poster(activity_id: int):
    activity = activities.organized(current_user, activity_id)
    token, _ = tokens.poster(activity)
    return render_template("volunteer/poster.html", a=activity, url=url_for("volunteer.scan", t=token, _external=True))


@bp.get("/organizer/activities/<int:activity_id>/kiosk")
@login_required
def kiosk(activity_id: int):
    return render_template("volunteer/kiosk.html", a=activities.organized(current_user, activity_id))
