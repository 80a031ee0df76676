"""JSON routes of the moral supermarket (API.md "Moral supermarket"). Thin: load, call, dump."""

from __future__ import annotations

from core import clock
from core.api import Routes, paginate
from core.db import db, utcnow
from core.errors import Invalid
from core.security import authorize
from exchange import queries, stores
from exchange import redemption as redemptions
from exchange.schemas import (
    ItemQuery,
    ItemSchema,
    LookupQuery,
    RedemptionListSchema,
    RedemptionQuery,
    RedemptionRequestSchema,
    RedemptionSchema,
    RedemptionVoidSchema,
    ResidentLookupSchema,
    StockSchema,
    StoreQuery,
    StoreSchema,
)

api = Routes()


@api.route("/stores", query=StoreQuery, response=StoreSchema, paged=True, auth=False, tag="exchange")
def list_stores(user, query):
    """Moral supermarkets, optionally only those in a region's subtree."""
    return paginate(queries.stores_in(query.get("region_code")), query, db.session)


@api.route("/stores", "POST", body=StoreSchema, response=StoreSchema, status=201, errors=(409,), tag="exchange")
def create_store(user, data):
    """An admin opens a store in their region."""
    return stores.create_store(actor=user, now=utcnow(), **data)


@api.route(
    "/stores/<int:store_id>/items",
    query=ItemQuery,
    response=ItemSchema,
    paged=True,
    auth=False,
    errors=(404,),
    tag="exchange",
)
def list_items(user, store_id, query):
    """The store's goods, with points price and stock."""
    store = stores.get_store(store_id)
    return paginate(queries.items_of(store, active=query.get("active")), query, db.session)


@api.route(
    "/stores/<int:store_id>/items",
    "POST",
    body=ItemSchema,
    response=ItemSchema,
    status=201,
    errors=(404, 409),
    tag="exchange",
)
def add_item(user, store_id, data):
    """A clerk or admin adds goods to the store (initial stock is recorded as a purchase)."""
    return stores.add_item(actor=user, store_id=store_id, now=utcnow(), **data)


@api.route(
    "/items/<int:item_id>/stock",
    "POST",
    body=StockSchema,
    response=ItemSchema,
    errors=(404, 409),
    idempotent=True,
    tag="exchange",
)
def move_stock(user, item_id, data, idempotency_key):
    """Stock in (purchase, donation with donor) or a stocktake (a delta, or the counted quantity)."""
    return stores.receive(
        actor=user,
        item_id=item_id,
        now=utcnow(),
        delta=data.get("delta"),
        reason=data["reason"],
        donor=data.get("donor"),
        note=data.get("note"),
        counted=data.get("counted"),
        key=idempotency_key,
    )


@api.route(
    "/stores/<int:store_id>/residents",
    query=LookupQuery,
    response=ResidentLookupSchema,
    many=True,
    errors=(404,),
    tag="exchange",
)
def find_resident(user, store_id, query):
    """The counter identifies a resident: by personal code (anyone who shows it), or by name and the
    last 4 phone digits (only residents the store serves: its region's subtree)."""
    store = stores.get_store(store_id)
    authorize(user, "clerk", store)
    if not query.get("code") and not (query.get("name") and query.get("phone_tail")):
        raise Invalid(errors={"code": ["请扫描会员码，或输入姓名和手机号后 4 位"]})
    return queries.find_residents(
        store, now=utcnow(), code=query.get("code"), name=query.get("name"), phone_tail=query.get("phone_tail")
    )


@api.route(
    "/stores/<int:store_id>/redemptions",
    "POST",
    body=RedemptionRequestSchema,
    response=RedemptionSchema,
    status=201,
    errors=(404, 409),
    idempotent=True,
    tag="exchange",
)
def redeem(user, store_id, data, idempotency_key):
    """A clerk of the store redeems a basket for a resident (all or nothing; once per Idempotency-Key)."""
    lines = [redemptions.Line(line["item_id"], line["qty"]) for line in data["lines"]]
    return redemptions.redeem(
        actor=user,
        store_id=store_id,
        lines=lines,
        key=idempotency_key,
        now=utcnow(),
        code=data.get("code"),
        resident_id=data.get("resident_id"),
    )


@api.route(
    "/redemptions/<int:redemption_id>/void",
    "POST",
    body=RedemptionVoidSchema,
    response=RedemptionSchema,
    errors=(404, 409),
    idempotent=True,
    tag="exchange",
)
def void(user, redemption_id, data, idempotency_key):
    """Void a redemption: points refunded and stock restored (a clerk the same day with the resident's
    personal code in `code`; an admin of the store's region any time, without it)."""
    return redemptions.void(
        actor=user, redemption_id=redemption_id, reason=data["reason"], code=data.get("code"), now=utcnow()
    )


@api.route(
    "/stores/<int:store_id>/redemptions",
    query=RedemptionQuery,
    response=RedemptionListSchema,
    errors=(404,),
    tag="exchange",
)
def list_redemptions(user, store_id, query):
    """The store's redemptions of one local day, with the day's totals."""
    store = stores.get_store(store_id)
    authorize(user, ("clerk", "admin"), store, hide=True)
    day = query.get("date") or clock.today()
    start, end = clock.day_range(day)
    report = redemptions.day_report(store, start, end)
    page = paginate(queries.redemptions_between(store, start, end), query, db.session)
    return {
        "items": page.items,
        "page": page.page,
        "per_page": page.per_page,
        "total": page.total,
        "date": day,
        "totals": {k: report[k] for k in ("redemptions", "points", "goods", "voids")},
    }
