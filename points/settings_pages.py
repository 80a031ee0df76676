"""Pages where an admin sets how points are earned in their regions: the deed catalogue (事迹类型)
and the duration → points rule with the region policy (积分规则), each showing what a region
inherits and from where. The same services as the API (`points.catalogue`, `points.policies`)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from community import queries as community_queries
from community import services as community_services
from community.models import Region
from core import clock, paging
from core.bounds import form_int
from core.db import db
from core.errors import DomainError, Forbidden
from core.security import authorize
from points import catalogue, policies, queries

bp = Blueprint("points_settings", __name__)


def _picked(regions: list[Region], code: str | None) -> Region | None:
    """The region a page is asked about, which must be one the admin administers; by default the
    first of theirs."""
    if not code:
        return regions[0] if regions else None
    found = next((r for r in regions if r.code == code), None)
    if found is None:
        raise Forbidden()
    return found


@bp.route("/admin/deed-types", methods=["GET", "POST"])
@login_required
def deed_types():
    """The catalogue in force in a region: add a type, rename, re-price, retire or bring one back."""
    authorize(current_user, "admin")
    regions = community_queries.region_choices(community_services.admin_roots(current_user))
    region = _picked(regions, request.values.get("region"))
    form, errors, status = {}, {}, 200
    if request.method == "POST" and region is not None:
        form = request.form.to_dict()
        action = form.get("action")
        try:
            points = form_int(form, "points", minimum=-catalogue.POINTS_LIMIT, maximum=catalogue.POINTS_LIMIT)
            values = catalogue.Change(
                name=form.get("name"),
                points=points,
                active=None if action == "add" else bool(form.get("active")),
            )
            service = catalogue.add if action == "add" else catalogue.change
            kind = service(
                actor=current_user, code=form.get("code", ""), values=values, region_code=region.code, now=clock.now()
            )
            if action == "add":
                flash(f"已添加「{kind.name}」（{kind.points:+d} 分），适用于{region.name}及下级地区", "success")
            else:
                flash(f"已保存「{kind.name}」：{kind.points:+d} 分，{'启用' if kind.active else '已停用'}", "success")
        except DomainError as error:
            errors, status = error.field_errors(), error.status
            flash(error.text, "error")
        else:
            return redirect(url_for("points_settings.deed_types", region=region.code))
    page = paging.page_of(catalogue.types_for(region, include_retired=True), request.args, db.session)
    return render_template(
        "points/deed_types.html",
        regions=regions,
        region=region,
        page=page,
        form=form,
        errors=errors,
        points_limit=catalogue.POINTS_LIMIT,
    ), status


@bp.route("/admin/point-rules", methods=["GET", "POST"])
@login_required
def point_rules():
    """The rule and policy in force in each region, where each comes from, and one region's form."""
    authorize(current_user, "admin")
    code = request.values.get("region")
    form, errors, status = {}, {}, 200
    if request.method == "POST":
        form = request.form.to_dict()
        try:
            given = {
                name: form_int(form, name, minimum=low, maximum=high) for name, (low, high) in RULE_FORM_BOUNDS.items()
            }
            given["expiry"] = form.get("expiry") if form.get("expiry") in ("none", "annual") else None
            view = policies.put_region_rule(actor=current_user, region_code=code or "", now=clock.now(), **given)
        except DomainError as error:
            errors, status = error.field_errors(), error.status
            flash(error.text, "error")
        else:
            flash(f"已保存{view.region.name}的积分规则，之后结算的签到按新规则计分", "success")
            return redirect(url_for("points_settings.point_rules", region=view.region.code))
    chosen = policies.rule_of(current_user, code) if code else None
    inherited = None
    if chosen is not None and chosen.region.parent is not None:
        inherited = policies.region_rules(db.session, [chosen.region.parent])[0]
    page = paging.page_of(queries.rule_regions(current_user), request.args, db.session)
    return render_template(
        "points/point_rules.html",
        page=page,
        views=policies.region_rules(db.session, list(page.items)),
        chosen=chosen,
        inherited=inherited,
        form=form,
        errors=errors,
        bounds=RULE_FORM_BOUNDS,
    ), status


RULE_FORM_BOUNDS = {
    "points_per_hour": (0, 100),
    "rounding_minutes": (1, 240),
    "minimum_minutes": (0, 480),
    "daily_cap_minutes": (1, 1440),
    "settlement_month": (1, 12),
    "settlement_day": (1, 28),
    "notice_days": (0, 30),
}
