"""Query budgets: how many SQL statements each hot route may send, on SQLite and PostgreSQL.

A lazy load that creeps in (a relationship read in a serializer, an object reloaded after commit)
adds statements; these tests fail on it at once instead of in a benchmark. The budgets count every
statement the request sends, transaction control included (BEGIN IMMEDIATE / SAVEPOINT are
statements too), and are stated per route below with what they pay for. A route that needs one more
statement for a new invariant raises its budget here, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event

from community import accounts
from core.db import db, utcnow
from exchange import inventory, stores
from points import ledger
from tests import factories as f
from tests.authz import build_world, sign_in_page
from tests.factories import fresh
from tests.volunteer_helpers import make_activity
from volunteer import attendance, signups, tokens

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


class Statements:
    """What a request sent: its data statements, and how many transactions it opened."""

    def __init__(self) -> None:
        self.sql: list[str] = []
        self.transactions = 0

    def __len__(self) -> int:
        return len(self.sql)

    def report(self) -> str:
        return "\n".join(f"{i + 1:3}. {s.splitlines()[0][:160]}" for i, s in enumerate(self.sql))


@contextmanager
def counted() -> Iterator[Statements]:
    """Every statement any connection of the app's engine sends while the block runs. BEGIN and
    COMMIT are counted as transactions, not statements (SQLite sends BEGIN as SQL, PostgreSQL's
    driver does not), so one budget holds on both databases."""
    found = Statements()
    engine = db.engine

    def before(conn, cursor, statement, parameters, context, executemany) -> None:
        if not statement.lstrip().upper().startswith(TRANSACTION_CONTROL):
            found.sql.append(statement)

    def begin(conn) -> None:
        found.transactions += 1

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "begin", begin)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "begin", begin)


def within(found: Statements, budget: int, transactions: int = 2) -> None:
    """At most `budget` statements, in at most `transactions` transactions: the read that finds
    the caller, and the one unit of work of the use case."""
    assert len(found) <= budget, f"{len(found)} statements, budget {budget}:\n{found.report()}"
    assert found.transactions <= transactions, f"{found.transactions} transactions:\n{found.report()}"


@pytest.fixture
def w(app):
    world = build_world()
    f.fund(world.users["resident"], 100)
    return world


def confirmed_running_activity(w, *who):
    activity = make_activity(w, start_in=timedelta(hours=-2), hours=3)
    for name in who:
        signups.sign_up(user=w.users[name], activity_id=activity.id, now=utcnow())
    return activity


def warm(client, headers) -> None:
    """One request first, so the budgets count a request's work, not the process's first-use costs
    (dialect probes, prepared caches) that every request after the first is spared."""
    client.get("/api/v1/me", headers=headers)


# Budgets: data statements per request, each paid for by something the use case needs.
# Check-in: the caller (token), the activity (locked, with its region and department), the row
# (locked), the sign-up, the person's account (held: orders their check-ins), "open elsewhere?",
# the attendance, the audit entry.
CHECK_IN = 8
# Kiosk: as a check-in, plus the organizer's role grants and the volunteer their code names.
KIOSK = 10
# Check-out: the caller, activity, row, account; the point rule; the day's other credits (cap and
# overlaps, one read); the department's account; the transfer (its key decided by the insert);
# the two balances; the archive entry and its anchor; the audit entry; the attendance; and the
# resident's notice that the points arrived (+1: one INSERT into their inbox, once-only by key).
CHECK_OUT = 15
# Counter: the clerk, the HTTP idempotency record (read, and written after), the store with its
# region, the clerk's grants, the resident with theirs (staff are flagged), the account (held),
# a redemption under this key, the items (locked), this month's limited lines, the store's
# account, the transfer, two balances, the order, the archive entry and anchor, the lines, the
# stock (one guarded UPDATE for the basket), the movements, the audit entry; and the resident's
# notice of what was spent (+1: one INSERT into their inbox, once-only by key).
REDEMPTION = 22
# Personal code page: the signed-in user, their grants (the menu shows what their roles open).
CODE_PAGE = 2
# Resident home: the user, the balance, the grants (menu and role cards), the region's name.
HOME_PAGE = 4


def test_a_venue_check_in_stays_within_its_budget(client, w):
    activity = confirmed_running_activity(w, "resident")
    headers = f.bearer(w.users["resident"])
    token, _ = tokens.rotating(activity, utcnow())
    warm(client, headers)
    with counted() as found:
        response = client.post("/api/v1/checkins", json={"token": token}, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["action"] == "check_in"
    within(found, CHECK_IN)


def test_a_venue_check_out_with_its_credit_stays_within_its_budget(client, w):
    activity = confirmed_running_activity(w, "resident", "target")
    came = utcnow() - timedelta(minutes=90)
    for who in ("target", "resident"):
        attendance.scan_venue_code(user=w.users[who], token=tokens.rotating(activity, came)[0], now=came)
    # Someone left before: the department's points account is open (once per department, ever).
    attendance.scan_venue_code(user=w.users["target"], token=tokens.rotating(activity, utcnow())[0], now=utcnow())
    fresh()
    headers = f.bearer(w.users["resident"])
    token, _ = tokens.rotating(activity, utcnow())
    warm(client, headers)
    with counted() as found:
        response = client.post("/api/v1/checkins", json={"token": token}, headers=headers)
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["action"] == "check_out" and body["attendance"]["points"] > 0
    within(found, CHECK_OUT)
    fresh()
    assert ledger.invariant_problems(db.session) == []


def test_a_kiosk_scan_stays_within_its_budget(client, w):
    activity = confirmed_running_activity(w, "resident")
    headers = f.bearer(w.users["organizer"])
    code, _ = accounts.personal_code(w.users["resident"], utcnow())
    url, resident_id = f"/api/v1/activities/{activity.id}/scans", w.users["resident"].id
    warm(client, headers)
    with counted() as found:
        response = client.post(url, json={"code": code}, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["volunteer"]["id"] == resident_id
    within(found, KIOSK)


def test_a_counter_redemption_stays_within_its_budget(client, w):
    headers = {**f.bearer(w.users["clerk"]), "Idempotency-Key": "budget-1"}
    body = {
        "code": accounts.personal_code(w.users["resident"], utcnow())[0],
        "lines": [{"item_id": w.items["oil"].id, "qty": 2}, {"item_id": w.items["rice"].id, "qty": 1}],
    }
    url = f"/api/v1/stores/{w.stores['s1'].id}/redemptions"
    opened = {**body, "lines": [{"item_id": w.items["oil"].id, "qty": 1}]}
    # The store's first basket ever opens its points account; the budget is for every other one.
    assert client.post(url, json=opened, headers={**headers, "Idempotency-Key": "first"}).status_code == 201
    with counted() as found:
        response = client.post(url, json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["total_points"] == 25
    assert response.get_json()["balance_after"] == 65
    # A third transaction stores the response for a repeat of the Idempotency-Key (API.md: the
    # same status and body again), once the response is known; the basket itself is one.
    within(found, REDEMPTION, transactions=3)
    fresh()
    assert ledger.invariant_problems(db.session) == []
    assert inventory.invariant_problems(db.session) == []


def test_the_personal_code_page_stays_within_its_budget(client, w):
    sign_in_page(client, w.users["resident"])
    client.get("/my/code")
    with counted() as found:
        response = client.get("/my/code")
    assert response.status_code == 200
    within(found, CODE_PAGE)


def test_the_resident_home_stays_within_its_budget(client, w):
    confirmed_running_activity(w, "resident")
    sign_in_page(client, w.users["resident"])
    client.get("/")
    with counted() as found:
        response = client.get("/")
    assert response.status_code == 200
    assert "100" in response.get_data(as_text=True)  # the balance is on the page
    within(found, HOME_PAGE)


def test_the_counter_reads_no_more_for_a_bigger_basket(client, w):
    """The statements of a redemption do not grow with the number of lines (no per-line queries)."""
    f.fund(w.users["resident"], 500)
    w.items["towel"] = stores.add_item(
        actor=None, store_id=w.stores["s1"].id, name="毛巾", unit="条", points_price=3, stock=10, now=utcnow()
    )
    headers = f.bearer(w.users["clerk"])
    code = accounts.personal_code(w.users["resident"], utcnow())[0]
    url, items = f"/api/v1/stores/{w.stores['s1'].id}/redemptions", {k: i.id for k, i in w.items.items()}
    first = {"code": code, "lines": [{"item_id": items["towel"], "qty": 1}]}
    assert client.post(url, json=first, headers={**headers, "Idempotency-Key": "first"}).status_code == 201
    sizes = []
    for n, lines in enumerate(([("rice", 1)], [("rice", 1), ("oil", 1)])):
        body = {"code": code, "lines": [{"item_id": items[k], "qty": q} for k, q in lines]}
        with counted() as found:
            response = client.post(url, json=body, headers={**headers, "Idempotency-Key": f"grow-{n}"})
        assert response.status_code == 201, response.get_json()
        sizes.append(len(found))
    assert sizes[1] == sizes[0], f"one line: {sizes[0]} statements, two lines: {sizes[1]}"
