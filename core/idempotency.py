"""HTTP idempotency: a repeated request with the same `Idempotency-Key` and body gets the first
response again (same status and body) and changes nothing; the same key with another body is a 409.

A successful response is kept in the same transaction as the change it reports (`keep`), so a crash
leaves both or neither: a retry after a restart either finds the response or makes the change anew.
Services that move points or stock also derive their own ledger keys from the HTTP key, so that two
identical requests in flight at once still apply once.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import sqlalchemy as sa
from flask import Response, request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, db, unit_of_work, utcnow
from core.errors import Conflict, Invalid

MAX_KEY = 64
STORED_STATUSES = {200, 201, 202, 204, 422}


class IdempotencyRecord(db.Model):
    __tablename__ = "idempotency_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.Integer)
    key: Mapped[str] = mapped_column(sa.String(MAX_KEY))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[int] = mapped_column(sa.Integer)
    mimetype: Mapped[str] = mapped_column(sa.String(64))
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    __table_args__ = (sa.UniqueConstraint("user_id", "key"),)


def request_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise Invalid(errors={"Idempotency-Key": [f"请求编号须为 1–{MAX_KEY} 个可见字符"]})
    return key


def request_hash() -> str:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path}\n".encode())
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def replay(user_id: int, key: str) -> Response | None:
    record = db.session.scalar(
        sa.select(IdempotencyRecord).where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
    )
    if record is None:
        return None
    if record.request_hash != request_hash():
        raise Conflict("idempotency_conflict")
    response = Response(record.body, status=record.status, mimetype=record.mimetype)
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _record(user_id: int, key: str, response: Response) -> IdempotencyRecord:
    return IdempotencyRecord(
        user_id=user_id,
        key=key,
        request_hash=request_hash(),
        status=response.status_code,
        mimetype=response.mimetype or "application/json",
        body=response.get_data(as_text=True),
    )


def keep(session, user_id: int, key: str, response: Response) -> None:
    """Store `response` in the caller's unit of work, beside the change it reports."""
    if response.status_code in STORED_STATUSES:
        session.add(_record(user_id, key, response))
        session.flush()


def remember(user_id: int, key: str, response: Response) -> None:
    """Store a refusal (nothing changed) in a unit of work of its own."""
    if response.status_code not in STORED_STATUSES:
        return
    db.session.rollback()
    record = _record(user_id, key, response)
    try:
        with unit_of_work() as session:
            session.add(record)
    except IntegrityError:
        pass  # the same request finished in parallel and stored the (same) response first
