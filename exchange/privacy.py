"""What the moral supermarket holds of a resident, for their own export (a hook of
`community.privacy`, added by `init_app`): their redemptions and voids. A closure changes none of
them: they name the resident by id."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from community.models import User
from exchange.models import Redemption, Store


def redemptions_of(session: Session, user: User) -> list[dict[str, Any]]:
    rows = session.execute(
        sa.select(Redemption, Store.name)
        .join(Store, Store.id == Redemption.store_id)
        .where(Redemption.resident_id == user.id)
        .options(selectinload(Redemption.lines))
        .order_by(Redemption.id)
    ).all()
    return [
        {
            "receipt_no": r.receipt_no,
            "store": store,
            "created_at": r.created_at,
            "goods": "、".join(f"{line.name}×{line.qty}" for line in r.lines),
            "total_points": r.total_points,
            "balance_after": r.balance_after,
            "status": r.status,
            "voided_at": r.voided_at,
            "void_reason": r.void_reason,
        }
        for r, store in rows
    ]
