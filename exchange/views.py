"""Pages of the moral supermarket: the counter (POS), goods and stock, the day's report, stores."""

from __future__ import annotations

import uuid
from datetime import date
from functools import partial

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from community import queries as community_queries
from community import services as community_services
from core import clock, uploads
from core.bounds import POINTS_MAX, STOCK_MAX, form_int
from core.db import db
from core.errors import DomainError
from core.pages import refusals
from core.security import authorize, covers
from exchange import queries, stores
from exchange import redemption as redemptions
from exchange.models import Store
from exchange.schemas import ResidentLookupSchema

bp = Blueprint("exchange", __name__)

# The counter's search shows what the API's lookup answers (the same schema, the phone masked),
# of it what the page has room for.
LOOKUP = ResidentLookupSchema(only=("id", "name", "phone", "region", "balance"))


def _staff_store(store_id: int, roles=stores.STAFF) -> Store:
    authorize(current_user, roles)
    store = stores.get_store(store_id)
    authorize(current_user, roles, store, hide=True)
    return store


@bp.get("/stores/")
@login_required
def my_stores():
    """The stores the signed-in clerk or admin works for."""
    authorize(current_user, stores.STAFF)
    regions = []
    if current_user.has_role("admin"):
        regions = community_queries.regions_within(community_services.admin_regions(current_user, roles=("admin",)))
    return render_template(
        "exchange/stores.html", stores=queries.staffed_by(current_user, stores.STAFF), regions=regions
    )


@bp.post("/stores/")
@login_required
def create_store():
    authorize(current_user, "admin")
    with refusals():
        store = stores.create_store(
            actor=current_user,
            name=request.form.get("name", ""),
            region_code=request.form.get("region_code", ""),
            now=clock.now(),
            opening_hours=request.form.get("opening_hours") or None,
        )
        flash(f"已开设「{store.name}」", "success")
    return redirect(url_for("exchange.my_stores"))


@bp.post("/stores/<int:store_id>/clerks")
@login_required
def grant_clerk(store_id: int):
    store = _staff_store(store_id, roles=("admin",))
    phone = request.form.get("phone", "").strip()
    user = community_queries.user_by_phone(phone)
    if user is None:
        flash("找不到该手机号的居民，请先让其注册", "error")
    else:
        with refusals():
            community_services.grant_role(
                actor=current_user,
                user_id=user.id,
                role="clerk",
                scope_type="store",
                scope_id=store.id,
                now=clock.now(),
            )
            flash(f"已授权 {user.name} 为「{store.name}」店员", "success")
    return redirect(url_for("exchange.goods", store_id=store.id))


@bp.get("/stores/<int:store_id>/counter")
@login_required
def counter(store_id: int):
    """The counter. Its name search works without script too (`?name=&phone_tail=`), scoped like
    the API's: only residents the store serves."""
    store = _staff_store(store_id, roles=("clerk",))
    items = queries.counter_items(store)
    search = {"name": request.args.get("name", "").strip()[:32], "phone_tail": request.args.get("phone_tail", "")}
    found, problem = None, None
    tail = search["phone_tail"]
    if search["name"] or tail:
        if search["name"] and len(tail) == 4 and tail.isascii() and tail.isdigit():
            found = LOOKUP.dump(queries.find_residents(store, now=clock.now(), **search), many=True)
        else:
            problem = "请输入姓名和手机号后 4 位"
    return render_template(
        "exchange/counter.html",
        store=store,
        items=items,
        search=search,
        found=found,
        problem=problem,
    )


@bp.get("/stores/<int:store_id>/receipts/<int:redemption_id>")
@login_required
def receipt(store_id: int, redemption_id: int):
    store = _staff_store(store_id)
    return render_template("exchange/receipt.html", store=store, r=queries.redemption_at(store, redemption_id))


@bp.route("/stores/<int:store_id>/goods", methods=["GET", "POST"])
@login_required
def goods(store_id: int):
    store = _staff_store(store_id)
    if request.method == "POST":
        try:
            _change_goods(store, request.form)
        except DomainError as error:
            # Shown again as typed, with what is wrong, instead of a blank form.
            flash(error.text, "error")
            return _goods_page(store, form=request.form), error.status
        return redirect(url_for("exchange.goods", store_id=store.id))
    return _goods_page(store)


def _change_goods(store: Store, form) -> None:
    number = partial(form_int, form)
    if form.get("action") == "add":
        stores.add_item(
            actor=current_user,
            store_id=store.id,
            name=form.get("name", ""),
            unit=form.get("unit", ""),
            points_price=number("points_price", minimum=1, maximum=POINTS_MAX, required=True),
            stock=number("stock", minimum=0, maximum=STOCK_MAX, default=0),
            low_stock_threshold=number("low_stock_threshold", minimum=0, maximum=STOCK_MAX, default=5),
            monthly_limit=number("monthly_limit", minimum=1, maximum=STOCK_MAX),
            category=form.get("category") or None,
            picture=uploads.from_request("picture"),
            now=clock.now(),
        )
        flash("已上架", "success")
    elif form.get("action") == "picture":
        stores.set_picture(
            actor=current_user,
            item_id=number("item_id", minimum=1, required=True),
            picture=None if form.get("remove") else (uploads.from_request("picture") or b""),
            now=clock.now(),
        )
        flash("图片已更新", "success")
    else:
        reason = form.get("reason", "purchase")
        stores.receive(
            actor=current_user,
            item_id=number("item_id", minimum=1, required=True),
            reason=reason,
            delta=number("delta", minimum=-STOCK_MAX, maximum=STOCK_MAX, default=0),
            counted=number("counted", minimum=0, maximum=STOCK_MAX) if reason == "stocktake" else None,
            donor=form.get("donor"),
            note=form.get("note"),
            key=form.get("idempotency_key") or None,
            now=clock.now(),
        )
        flash("已入库" if reason != "stocktake" else "盘点已记录", "success")


def _goods_page(store: Store, form=None) -> str:
    return render_template(
        "exchange/goods.html",
        store=store,
        items=db.session.scalars(queries.items_of(store)).all(),
        movements=queries.recent_movements(store),
        is_admin=covers(current_user, "admin", store),
        # One key per rendered form: a double submit of the same form receives the stock once.
        form_key=uuid.uuid4().hex,
        form=form or {},
    )


@bp.get("/stores/<int:store_id>/items/<int:item_id>/picture")
def item_picture(store_id: int, item_id: int):
    """An item's picture: public, like the goods themselves."""
    return uploads.send(stores.item_picture(store_id, item_id), public=True)


@bp.get("/stores/<int:store_id>/report")
@login_required
def report(store_id: int):
    store = _staff_store(store_id)
    return _report_page(store, request.args.get("date"))


def _report_page(store: Store, asked_day: str | None, *, void_form: dict | None = None, status: int = 200):
    try:
        day = date.fromisoformat(asked_day) if asked_day else None
    except ValueError:
        day = None
    today = clock.today()
    day = day or today
    data = redemptions.day_report(store, *clock.day_range(day))
    low = queries.low_stock(store)
    page = render_template(
        "exchange/report.html",
        store=store,
        day=day,
        data=data,
        low=low,
        can_void_all=covers(current_user, "admin", store),
        today=today,
        void_form=void_form or {},
    )
    return page, status


@bp.post("/stores/<int:store_id>/redemptions/<int:redemption_id>/void")
@login_required
def void(store_id: int, redemption_id: int):
    """Void from the day report: a clerk scans the resident's code into the form; an admin of the
    store's region needs none. A refusal shows the report again with the reason as typed."""
    store = _staff_store(store_id)
    reason = request.form.get("reason", "")
    try:
        redemptions.void(
            actor=current_user,
            redemption_id=redemption_id,
            reason=reason,
            code=request.form.get("code") or None,
            now=clock.now(),
        )
    except DomainError as error:
        flash(error.text, "error")
        form = {"id": redemption_id, "reason": reason[:255]}
        return _report_page(store, request.form.get("date"), void_form=form, status=error.status)
    flash("已撤销，积分已退回，库存已恢复", "success")
    return redirect(url_for("exchange.report", store_id=store.id, date=request.form.get("date", "")))
