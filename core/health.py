"""`GET /healthz`: the process is up and the database answers (503 when it does not)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from marshmallow import fields

from core.api import BaseSchema, Routes
from core.db import db

api = Routes(blueprint="health", url_prefix="")


class HealthSchema(BaseSchema):
    status = fields.String()
    db = fields.String()


@api.route("/healthz", response=HealthSchema, auth=False, errors=(503,), tag="operations")
def healthz(user: Any) -> Any:
    """Liveness and database reachability."""
    try:
        db.session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        return {"status": "unavailable", "db": "unreachable"}, 503
    return {"status": "ok", "db": "ok"}
