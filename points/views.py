"""Pages of the points domain: my archive, certificates (printable, and their public check), the
admin's residents and adjustments, deeds (record, review, public notice and its objections). Same
services as the API."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from community import services as community_services
from community.models import Region
from community.schemas import ResidentOut
from core import clock, paging, uploads
from core.bounds import form_int
from core.db import db
from core.errors import Invalid, NotFound
from core.pages import refusals
from core.qr import qr_png
from core.security import authorize
from points import adjustments, archive, certificates, deeds, expiry, queries
from points.schemas import MAX_ADJUSTMENT

bp = Blueprint("points", __name__)

# Who the archive belongs to, as its page heads it (the owner's own page and an admin's alike).
ARCHIVE_HEADER = ResidentOut(only=("id", "name", "volunteer_no", "region"))
# A resident as the admin's list of residents shows them.
RESIDENT_ROW = ResidentOut(only=("id", "name", "volunteer_no", "phone", "region"))


@bp.get("/my/archive")
@login_required
def my_archive():
    return _archive_page(current_user, own=True, lapse=expiry.next_lapse(current_user, clock.today()))


def _archive_page(resident, *, own: bool, **extra) -> str:
    """The archive page, the newest entry first: the resident's own, or an admin's view of it."""
    shown = queries.archive_of(resident)
    return render_template(
        "points/archive.html",
        resident=ARCHIVE_HEADER.dump(resident),
        resident_id=resident.id,
        own=own,
        totals=shown["totals"],
        entries=list(reversed(shown["entries"])),
        proxies=queries.proxy_names(shown["entries"]),
        head=shown["head_hash"],
        **extra,
    )


@bp.route("/my/certificates", methods=["GET", "POST"])
@login_required
def my_certificates():
    today = clock.today()  # the local day: a certificate asked for at 01:30 covers today's hours
    start, end, status = date(today.year, 1, 1).isoformat(), today.isoformat(), 200
    if request.method == "POST":
        start, end = request.form.get("from", ""), request.form.get("to", "")
        with refusals("请选择正确的起止日期") as refused:
            cert = certificates.issue(
                user=current_user,
                period_from=date.fromisoformat(start),
                period_to=date.fromisoformat(end),
                now=clock.now(),
            )
            return redirect(url_for("points.certificate_print", code=cert.code))
        status = refused.status
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
    page = paging.page_of(queries.residents_within(roots, q), request.args, db.session)
    return render_template(
        "points/residents.html",
        page=replace(page, items=RESIDENT_ROW.dump(page.items, many=True)),
        q=q,
        balances=queries.balances(page.items),
    )


@bp.get("/admin/residents/<int:resident_id>")
@login_required
def resident(resident_id: int):
    user = queries.resident_in_scope(current_user, resident_id)
    household = None
    if found := queries.household_of(user):
        home, members = found
        household = {"number": home.number, "members": [(m, archive.totals(db.session, m.id)) for m in members]}
    return _archive_page(
        user,
        own=False,
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
    with refusals():
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
    people = ResidentOut(many=True, only=("id", "name", "region", "phone")).dump(queries.residents_by_name(roots))
    today = clock.today()  # the local day: at 01:30 in Beijing the UTC date is still yesterday
    form, status = {}, 200
    if request.method == "POST":
        form = request.form
        with refusals("请选择正确的发生日期") as refused:
            deed = deeds.record(
                actor=current_user,
                resident_id=form_int(form, "resident_id", minimum=1, required=True, message="请选择居民"),
                deed_type=form.get("deed_type", ""),
                description=form.get("description", ""),
                occurred_on=date.fromisoformat(form.get("occurred_on") or today.isoformat()),
                photo=uploads.from_request("photo"),
                now=clock.now(),
            )
            flash(f"已提交「{deed.deed_type.name}」，等待审核", "success")
            return redirect(url_for("points.new_deed"))
        status = refused.status
    types = db.session.scalars(deeds.types_for(roots[0] if roots else None)).all()
    return render_template("points/deed_form.html", people=people, types=types, today=today, form=form), status


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
        with refusals():
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
            flash("已处理", "success")
        return redirect(url_for("points.review_deeds"))
    rows = queries.deeds_to_review(community_services.admin_regions(current_user, roles=deeds.REVIEWERS))
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
    with refusals():
        deeds.object_to(actor=current_user, deed_id=deed_id, reason=request.form.get("reason", ""), now=clock.now())
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
        with refusals():
            adjustment_id = form_int(request.form, "adjustment_id", minimum=1, required=True)
            if action == "approve":
                adjustments.approve(actor=current_user, adjustment_id=adjustment_id, now=clock.now())
            elif action == "reject":
                reason = request.form.get("reason", "")
                adjustments.reject(actor=current_user, adjustment_id=adjustment_id, reason=reason, now=clock.now())
            else:
                raise Invalid(errors={"action": ["请选择操作"]})
            flash("已处理", "success")
        return redirect(url_for("points.review_adjustments"))
    # Every pending one is work to do (oldest first would hide the newest); the decided ones page.
    decided = paging.page_of(queries.decided_adjustments(current_user), request.args, db.session)
    return render_template(
        "points/adjustment_review.html",
        pending=queries.pending_adjustments(current_user),
        decided=decided,
        me=current_user,
        review_above=adjustments.review_above(),
    )
