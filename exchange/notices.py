"""What the moral supermarket tells a resident: a redemption made with their points, and its void.

Queued through `core.notify.queue` in the redemption's own unit of work (one INSERT, once-only by
key), so the resident's inbox shows it at once and the senders deliver it afterwards. The Chinese
text lives here, in one place.
"""

from __future__ import annotations

from datetime import datetime

from core.notify import queue
from exchange.models import Redemption, Store


def redeemed(session, redemption: Redemption, store: Store, goods: str, *, now: datetime) -> None:
    queue(
        session,
        user_id=redemption.resident_id,
        kind="redemption",
        title=f"兑换成功 -{redemption.total_points}",
        body=(
            f"您在「{store.name}」兑换了 {goods}，使用 {redemption.total_points} 积分，"
            f"余额 {redemption.balance_after} 分。如非本人兑换，请联系该店或村(社区)。"
        ),
        key=f"redemption:{redemption.id}",
        now=now,
    )


def voided(session, redemption: Redemption, store: Store, refunded: int, *, now: datetime) -> None:
    queue(
        session,
        user_id=redemption.resident_id,
        kind="redemption",
        title=f"兑换已撤销 +{refunded}",
        body=(
            f"您在「{store.name}」的兑换（小票 {redemption.receipt_no}）已撤销："
            f"{redemption.void_reason}。退还 {refunded} 积分。"
        ),
        key=f"void:{redemption.id}",
        now=now,
    )
