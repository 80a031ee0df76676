"""Pages of the points domain: my archive, certificates (printable, and their public check), the
admin's residents and adjustments, deeds (record, review, public notice and its objections). Same
services as the API."""

from __future__ import annotations

import secrets
from datetime import date

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from community import pii
from community import services as community_services
from community.models import Household, Region, User
from core import clock, paging, uploads
from core.bounds import form_int
from core.db import db
from core.errors import DomainError, Invalid, NotFound
from core.qr import qr_png
from core.security import authorize
from points import adjustments, archive, certificates, deeds, expiry
from points.models import Adjustment, Deed
from points.schemas import MAX_ADJUSTMENT

bp = Blueprint("points", __name__)


@bp.get("/my/archive")
@login_required
def my_archive():
    user = current_user
    return render_template(
        "points/archive.html",
        resident=user,
        own=True,
        totals=archive.totals(db.session, user.id),
        entries=list(reversed(archive.entries(db.session, user.id))),
        head=archive.head_hash(db.session, user.id),
        lapse=expiry.next_lapse(user, clock.today()),
    )


@bp.route("/my/certificates", methods=["GET", "POST"])
@login_required
def my_certificates():
    today = clock.today()  # the local day: a certificate asked for at 01:30 covers today's hours
    start, end, status = date(today.year, 1, 1).isoformat(), today.isoformat(), 200
    if request.method == "POST":
        start, end = request.form.get("from", ""), request.form.get("to", "")
        try:
            cert = certificates.issue(
                user=current_user,
                period_from=date.fromisoformat(start),
                period_to=date.fromisoformat(end),
                now=clock.now(),
            )
        except ValueError:
            flash("请选择正确的起止日期", "error")
            status = 422
        except DomainError as error:
            flash(error.text, "error")
            status = error.status
        else:
            return redirect(url_for("points.certificate_print", code=cert.code))
    return render_template("points/certificate_form.html", start=start, end=end, today=today), status


@bp.get("/my/certificates/<code>")
@login_required
def certificate_print(code: str):
    cert = certificates.lookup(code)
    if cert.user_id != current_user.id:
        raise NotFound("certificate_not_found")
    return render_template(
        "points/certificate.html",
        cert=cert,
        rows=certificates.certified_entries(cert),
        state=certificates.status(cert),
        user=cert.user,
    )


@bp.get("/certificates")
def certificate_lookup():
    """A form to type a certificate number, for those who cannot scan the QR."""
    code = request.args.get("code", "").strip().upper()
    if code:
        return redirect(url_for("points.certificate_page", code=code))
    return render_template("points/certificate_check.html", view=None, code=None)


@bp.get("/certificates/<code>")
def certificate_page(code: str):
    """The public check a printed certificate's QR opens: masked data only."""
    try:
        view = certificates.public_view(certificates.lookup(code))
    except NotFound:
        return render_template("points/certificate_check.html", view=None, code=code), 404
    return render_template("points/certificate_check.html", view=view, code=code)


@bp.get("/certificates/<code>.png")
def certificate_qr(code: str):
    certificates.lookup(code)
    return qr_png(url_for("points.certificate_page", code=code, _external=True)), 200, {"Content-Type": "image/png"}


# Admin and reviewer: residents of their region -------------------------------------------------


def _scope_roots() -> list[Region]:
    authorize(current_user, ("admin", "reviewer"))
    return community_services.admin_regions(current_user)


@bp.get("/admin/residents")
@login_required
def residents():
    roots = _scope_roots()
    q = request.args.get("q", "").strip()[:64]
    scope = sa.or_(*[community_services.subtree(r) for r in roots])
    query = sa.select(User).join(User.region).where(scope).order_by(User.id)
    if q:
        query = query.where(
            sa.or_(
                User.name.contains(q, autoescape=True), User.volunteer_no == q, User.phone.endswith(q, autoescape=True)
            )
        )
    page = paging.page_of(query, request.args, db.session)
    balances = {u.id: archive.ledger.balance(db.session, u.id) for u in page.items}
    return render_template("points/residents.html", page=page, q=q, balances=balances, mask_phone=pii.mask_phone)


@bp.get("/admin/residents/<int:resident_id>")
@login_required
def resident(resident_id: int):
    authorize(current_user, ("admin", "reviewer"))
    user = db.session.get(User, resident_id)
    if user is None:
        raise NotFound()
    authorize(current_user, ("admin", "reviewer"), user, hide=True)
    household = None
    if user.household_id:
        members = db.session.scalars(sa.select(User).where(User.household_id == user.household_id)).all()
        household = {
            "number": db.session.get(Household, user.household_id).number,
            "members": [(m, archive.totals(db.session, m.id)) for m in members],
        }
    return render_template(
        "points/archive.html",
        resident=user,
        own=False,
        totals=archive.totals(db.session, user.id),
        entries=list(reversed(archive.entries(db.session, user.id))),
        head=archive.head_hash(db.session, user.id),
        lapse=None,
        household=household,
        verification=archive.verify(db.session, user.id),
        adjust_key=secrets.token_urlsafe(16),
        review_above=adjustments.review_above(),
    )


@bp.post("/admin/residents/<int:resident_id>/adjustments")
@login_required
def adjust(resident_id: int):
    """An admin credits or debits a resident with a reason (the same service as the API): small
    ones post at once, larger ones wait for a second admin. The form's key makes a double submit
    one adjustment."""
    authorize(current_user, "admin")
    form = request.form
    try:
        adjustment = adjustments.request(
            actor=current_user,
            resident_id=resident_id,
            points=form_int(
                form, "points", minimum=-MAX_ADJUSTMENT, maximum=MAX_ADJUSTMENT, required=True, message="请填写积分"
            ),
            reason=form.get("reason", ""),
            key=f"page-{(form.get('key') or secrets.token_urlsafe(16))[:40]}",
            now=clock.now(),
        )
    except DomainError as error:
        flash(error.text, "error")
    else:
        if adjustment.status == "posted":
            flash(f"已调整 {adjustment.points:+d} 分，记入档案", "success")
        else:
            flash(f"调整 {adjustment.points:+d} 分已提交，须另一位管理员审核后计入", "info")
    return redirect(url_for("points.resident", resident_id=resident_id))


# Deeds ------------------------------------------------------------------------------------------


@bp.route("/deeds/new", methods=["GET", "POST"])
@login_required
def new_deed():
    authorize(current_user, "grid_worker")
    roots = community_services.admin_regions(current_user, roles=("grid_worker",))
    scope = sa.or_(*[community_services.subtree(r) for r in roots])
    people = db.session.scalars(sa.select(User).join(User.region).where(scope).order_by(User.name).limit(500)).all()
    today = clock.today()  # the local day: at 01:30 in Beijing the UTC date is still yesterday
    form, status = {}, 200
    if request.method == "POST":
        form = request.form
        try:
            deed = deeds.record(
                actor=current_user,
                resident_id=form_int(form, "resident_id", minimum=1, required=True, message="请选择居民"),
                deed_type=form.get("deed_type", ""),
                description=form.get("description", ""),
                occurred_on=date.fromisoformat(form.get("occurred_on") or today.isoformat()),
                photo=uploads.from_request("photo"),
                now=clock.now(),
            )
        except ValueError:
            flash("请选择正确的发生日期", "error")
            status = 422
        except DomainError as error:
            flash(error.text, "error")
            status = error.status
        else:
            flash(f"已提交「{deed.deed_type.name}」，等待审核", "success")
            return redirect(url_for("points.new_deed"))
    types = db.session.scalars(deeds.types_for(roots[0] if roots else None)).all()
    return render_template(
        "points/deed_form.html", people=people, types=types, today=today, form=form, mask_phone=pii.mask_phone
    ), status


@bp.get("/deeds/<int:deed_id>/photo")
@login_required
def deed_photo(deed_id: int):
    return uploads.send(deeds.photo_key(viewer=current_user, deed_id=deed_id), public=False)


@bp.route("/deeds/review", methods=["GET", "POST"])
@login_required
def review_deeds():
    authorize(current_user, deeds.REVIEWERS)
    if request.method == "POST":
        action = request.form.get("action")
        try:
            deed_id = form_int(request.form, "deed_id", minimum=1, required=True, message="请选择要处理的记录")
            if action == "approve":
                deeds.approve(actor=current_user, deed_id=deed_id, now=clock.now())
            elif action == "reject":
                deeds.reject(actor=current_user, deed_id=deed_id, note=request.form.get("note"), now=clock.now())
            elif action == "void":
                deeds.void(actor=current_user, deed_id=deed_id, reason=request.form.get("reason", ""), now=clock.now())
            elif action in ("upheld", "dismissed"):
                deeds.resolve_objection(
                    actor=current_user,
                    deed_id=deed_id,
                    objection_id=form_int(request.form, "objection_id", minimum=1, required=True),
                    decision=action,
                    note=request.form.get("note"),
                    now=clock.now(),
                )
            else:
                raise Invalid(errors={"action": ["请选择操作"]})
        except DomainError as error:
            flash(error.text, "error")
        else:
            flash("已处理", "success")
        return redirect(url_for("points.review_deeds"))
    roots = community_services.admin_regions(current_user, roles=deeds.REVIEWERS)
    region_ids = sa.union(*[community_services.region_ids_in(r) for r in roots])
    rows = db.session.scalars(
        sa.select(Deed)
        .where(Deed.region_id.in_(region_ids), Deed.status.in_(("pending", "approved")))
        .order_by(Deed.id)
    ).all()
    return render_template("points/deed_review.html", deeds=rows, now=clock.now(), in_notice=deeds.in_notice)


@bp.get("/notices")
def notices():
    """The public notice (公示): deeds on notice, and recent outcomes; masked names without consent."""
    now = clock.now()
    rows = db.session.scalars(deeds.public_notice(now).limit(200)).all()
    return render_template(
        "points/notices.html", deeds=rows, public_name=deeds.public_name, now=now, in_notice=deeds.in_notice
    )


@bp.post("/notices/<int:deed_id>/objection")
@login_required
def object_to(deed_id: int):
    try:
        deeds.object_to(actor=current_user, deed_id=deed_id, reason=request.form.get("reason", ""), now=clock.now())
    except DomainError as error:
        flash(error.text, "error")
    else:
        flash("异议已提交，审核员会核实处理", "success")
    return redirect(url_for("points.notices"))


# Admin adjustments: the second pair of eyes -----------------------------------------------------


@bp.route("/admin/adjustments", methods=["GET", "POST"])
@login_required
def review_adjustments():
    """Pending adjustments of the admin's residents, to approve or reject; recent decisions below."""
    authorize(current_user, "admin")
    if request.method == "POST":
        action = request.form.get("action")
        try:
            adjustment_id = form_int(request.form, "adjustment_id", minimum=1, required=True)
            if action == "approve":
                adjustments.approve(actor=current_user, adjustment_id=adjustment_id, now=clock.now())
            elif action == "reject":
                reason = request.form.get("reason", "")
                adjustments.reject(actor=current_user, adjustment_id=adjustment_id, reason=reason, now=clock.now())
            else:
                raise Invalid(errors={"action": ["请选择操作"]})
        except DomainError as error:
            flash(error.text, "error")
        else:
            flash("已处理", "success")
        return redirect(url_for("points.review_adjustments"))
    # Every pending one is work to do (oldest first would hide the newest); the decided ones page.
    pending = db.session.scalars(adjustments.in_scope(current_user, "pending").limit(200)).all()
    decided = paging.page_of(
        adjustments.in_scope(current_user).where(Adjustment.status != "pending"), request.args, db.session
    )
    return render_template(
        "points/adjustment_review.html",
        pending=pending,
        decided=decided,
        me=current_user,
        review_above=adjustments.review_above(),
    )
