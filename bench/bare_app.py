"""The floor the hot paths are measured against: a bare Flask + SQLAlchemy app doing only the
minimal work of each request, on the same database (its own `bare_*` tables beside the project's)
with the same engine settings (WAL, synchronous=NORMAL, busy_timeout and BEGIN IMMEDIATE writes
on SQLite; psycopg 3 and pool_pre_ping everywhere), served by the same gunicorn command.

- check-in `POST /checkins {token}`: verify the bearer token (the project's serializer and salt)
  and the venue code's HMAC, insert one attendance row.
- check-out `POST /checkouts {token}`: verify both, one guarded update closing the open
  attendance row, one ledger-like insert and one balance update.
- redemption `POST /stores/<id>/redemptions {resident_id, lines}` + Idempotency-Key: verify the
  bearer token, one guarded debit, one guarded stock update, one ledger insert (the key unique).

Served with `gunicorn 'bench.bare_app:create_app()'` (DATABASE_URL and SECRET_KEY from the environment);
`prepare(url, ...)` creates and fills its tables.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, abort, jsonify, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

SALT = "api-token-v1"  # the project's API-token salt: verification costs the same
TTL = int(timedelta(days=7).total_seconds())
ACTIVITY = 1
POINTS = 15  # 1.5 hours at 10 points an hour

meta = sa.MetaData()
attendance = sa.Table(
    "bare_attendance",
    meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("activity_id", sa.Integer, nullable=False),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("checked_in_at", sa.DateTime, nullable=False),
    sa.Column("checked_out_at", sa.DateTime),
    sa.Column("status", sa.String(16), nullable=False),
    sa.UniqueConstraint("activity_id", "user_id"),
)
account = sa.Table(
    "bare_account",
    meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("balance", sa.BigInteger, nullable=False),
    sa.CheckConstraint("balance >= 0"),
)
item = sa.Table(
    "bare_item",
    meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("stock", sa.Integer, nullable=False),
    sa.CheckConstraint("stock >= 0"),
)
entry = sa.Table(
    "bare_entry",
    meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("key", sa.String(80), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)


def engine_for(url: str) -> sa.Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    engine = sa.create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            for pragma in ("foreign_keys=ON", "busy_timeout=30000", "journal_mode=WAL", "synchronous=NORMAL"):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def venue_token(secret: str) -> str:
    return f"A{ACTIVITY}.P." + _venue_signature(secret)


def _venue_signature(secret: str) -> str:
    return hmac.new(secret.encode(), f"{ACTIVITY}:poster".encode(), hashlib.sha256).hexdigest()[:16]


def bearer(secret: str, user_id: int) -> str:
    return URLSafeTimedSerializer(secret, salt=SALT).dumps({"uid": user_id, "v": 0})


def prepare(url: str, *, inside: list[int], accounts: list[int], balance: int = 10_000_000) -> None:
    """Create the bare tables; `inside` are checked in 90 minutes ago; `accounts` get a balance."""
    engine = engine_for(url)
    meta.drop_all(engine)
    meta.create_all(engine)
    earlier = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=90)
    with engine.begin() as conn:
        conn.execute(sa.insert(item), [{"id": 1, "stock": 100_000_000}])
        if accounts:
            conn.execute(sa.insert(account), [{"id": a, "balance": balance} for a in accounts])
        if inside:
            conn.execute(
                sa.insert(attendance),
                [{"activity_id": ACTIVITY, "user_id": u, "checked_in_at": earlier, "status": "open"} for u in inside],
            )
    engine.dispose()


def problems(url: str, *, balance: int = 10_000_000, stock: int = 100_000_000) -> list[str]:
    """The bare tables' own ledger check: every balance is its opening plus its entries, and the
    stock is its opening less the redeemed quantity."""
    engine = engine_for(url)
    moved = sa.select(entry.c.account_id, sa.func.sum(entry.c.amount).label("total")).group_by(entry.c.account_id)
    moved = moved.subquery()
    with engine.connect() as conn:
        wrong = conn.scalar(
            sa.select(sa.func.count())
            .select_from(account.outerjoin(moved, moved.c.account_id == account.c.id))
            .where(account.c.balance != balance + sa.func.coalesce(moved.c.total, 0))
        )
        redeemed = conn.scalar(sa.select(sa.func.coalesce(sa.func.sum(-entry.c.amount), 0)).where(entry.c.amount < 0))
        left = conn.scalar(sa.select(item.c.stock).where(item.c.id == 1))
    engine.dispose()
    found = [f"{wrong} balances differ from their entries"] if wrong else []
    if left != stock - redeemed:
        found.append(f"stock {left} != {stock} - {redeemed} redeemed")
    return found


def create_app(url: str | None = None, secret: str | None = None) -> Flask:
    url = url or os.environ["DATABASE_URL"]
    secret = secret or os.environ["SECRET_KEY"]
    app = Flask(__name__)
    engine = engine_for(url)
    serializer = URLSafeTimedSerializer(secret, salt=SALT)
    signature = _venue_signature(secret)

    def caller() -> int:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        try:
            data = serializer.loads(token, max_age=TTL)
        except BadSignature:
            abort(401)
        if scheme.lower() != "bearer" or not isinstance(data, dict) or not isinstance(data.get("uid"), int):
            abort(401)
        return data["uid"]

    def venue() -> None:
        body = request.get_json(silent=True) or {}
        parts = str(body.get("token", "")).split(".")
        if len(parts) != 3 or parts[0] != f"A{ACTIVITY}" or not hmac.compare_digest(parts[2], signature):
            abort(422)

    @app.post("/api/v1/checkins")
    def check_in():
        user_id = caller()
        venue()
        now = datetime.now(UTC).replace(tzinfo=None)
        try:
            with engine.begin() as conn:
                row_id = conn.execute(
                    sa.insert(attendance).values(
                        activity_id=ACTIVITY, user_id=user_id, checked_in_at=now, status="open"
                    )
                ).inserted_primary_key[0]
        except sa.exc.IntegrityError:
            abort(409)  # a second scan: the bare floor does first scans only
        return jsonify(attendance={"id": row_id, "user_id": user_id, "status": "open"}, action="check_in")

    @app.post("/api/v1/checkouts")
    def check_out():
        user_id = caller()
        venue()
        now = datetime.now(UTC).replace(tzinfo=None)
        with engine.begin() as conn:
            closed = conn.execute(
                sa.update(attendance)
                .where(
                    attendance.c.activity_id == ACTIVITY,
                    attendance.c.user_id == user_id,
                    attendance.c.status == "open",
                )
                .values(status="closed", checked_out_at=now)
            ).rowcount
            if closed != 1:
                abort(409)
            conn.execute(
                sa.insert(entry).values(
                    account_id=user_id, amount=POINTS, key=f"attendance-{ACTIVITY}-{user_id}", created_at=now
                )
            )
            conn.execute(sa.update(account).where(account.c.id == user_id).values(balance=account.c.balance + POINTS))
        return jsonify(attendance={"user_id": user_id, "status": "closed", "points": POINTS}, action="check_out")

    @app.post("/api/v1/stores/<int:store_id>/redemptions")
    def redeem(store_id: int):
        caller()
        body = request.get_json(silent=True) or {}
        key = request.headers.get("Idempotency-Key", "")
        try:
            resident = int(body["resident_id"])
            line = body["lines"][0]
            item_id, qty = int(line["item_id"]), int(line["qty"])
        except (KeyError, IndexError, TypeError, ValueError):
            abort(422)
        points = qty  # one point each
        now = datetime.now(UTC).replace(tzinfo=None)
        with engine.begin() as conn:
            balance = conn.execute(
                sa.update(account)
                .where(account.c.id == resident, account.c.balance >= points)
                .values(balance=account.c.balance - points)
                .returning(account.c.balance)
            ).scalar_one_or_none()
            taken = conn.execute(
                sa.update(item).where(item.c.id == item_id, item.c.stock >= qty).values(stock=item.c.stock - qty)
            ).rowcount
            if balance is None or taken != 1:
                abort(422)  # leaving the block with an exception rolls both back
            conn.execute(
                sa.insert(entry).values(account_id=resident, amount=-points, key=f"redeem-{key}", created_at=now)
            )
        return jsonify(store_id=store_id, total_points=points, balance_after=balance), 201

    return app
