"""What volunteer service tells a resident: their sign-up confirmed (or made for them), a check-in
by their printed card, points credited for time served, a make-up approved or rejected.

Each notice goes into the resident's inbox through `core.notify.queue`, in the caller's unit of
work (it stands or falls with the change it reports: one INSERT), under a key that makes it
once-only. The Chinese text lives here, in one place. Whatever was done on the resident's behalf
(代办) says so and by whom, so that a resident who did not ask for it can object.
"""

from __future__ import annotations

from datetime import datetime

from community.models import User
from core import clock
from core.notify import queue
from volunteer.models import Activity, Attendance, Signup

STATUS_TEXT = {"confirmed": "已报名", "waitlisted": "名额已满，已进入候补", "pending": "待组织者审核"}


def _hours(minutes: int) -> str:
    return f"{minutes / 60:.1f}".removesuffix(".0")


def _when(activity: Activity) -> str:
    return clock.local(activity.starts_at).strftime("%m月%d日 %H:%M")


def signed_up(session, signup: Signup, activity: Activity, *, proxy: User | None, now: datetime) -> None:
    """A sign-up made on the resident's behalf (any status), or a confirmed sign-up of their own."""
    if proxy is None and signup.status != "confirmed":
        return  # waitlisted or pending: the page said so; the promotion or decision will tell them
    where = f"{_when(activity)}，地点：{activity.address}"
    if proxy is not None:
        title = f"代报名：{activity.title}"
        body = (
            f"{proxy.name}为您代报名了「{activity.title}」（{STATUS_TEXT[signup.status]}），{where}。"
            "如非您本人意愿，请联系村(社区)或网格员。"
        )
    else:
        title, body = f"报名成功：{activity.title}", f"您已报名「{activity.title}」，{where}。请准时到场扫码签到。"
    queue(
        session,
        user_id=signup.user_id,
        kind="signup",
        title=title,
        body=body,
        key=f"signup:{signup.id}:{signup.status}:{now.isoformat()}",
        now=now,
    )


def checked_in_by_card(session, row: Attendance, activity: Activity, *, proxy: User, now: datetime) -> None:
    queue(
        session,
        user_id=row.user_id,
        kind="attendance",
        title=f"已凭会员卡签到：{activity.title}",
        body=(
            f"{proxy.name}于 {clock.local(now).strftime('%H:%M')} 扫描您的会员卡，为您在「{activity.title}」签到。"
            "如非您本人到场，请联系村(社区)。"
        ),
        key=f"card-in:{row.id}:{now.isoformat()}",
        now=now,
    )


def checked_out(session, row: Attendance, activity: Activity, *, proxy: User | None, now: datetime) -> None:
    """After a check-out: the points credited (if any), and, for a card, that someone scanned it."""
    by_card = f"（{proxy.name}扫描您的会员卡代为签退）" if proxy is not None else ""
    if row.points > 0:
        title = f"积分到账 +{row.points}"
        body = f"您参加「{activity.title}」服务 {_hours(row.credited_minutes)} 小时，获得 {row.points} 积分{by_card}。"
    elif proxy is not None:
        title, body = f"已凭会员卡签退：{activity.title}", f"您在「{activity.title}」已签退{by_card}，本次未计积分。"
    else:
        return
    queue(
        session,
        user_id=row.user_id,
        kind="points",
        title=title,
        body=body,
        key=f"credited:{row.credit_key}",
        now=now,
    )


def makeup_decided(session, row: Attendance, activity: Activity, *, approved: bool, now: datetime) -> None:
    if approved:
        title = f"补录已通过 · {activity.title}"
        body = (
            f"您在「{activity.title}」的服务记录补录已审核通过：共计 {_hours(row.credited_minutes)} 小时、"
            f"{row.points} 积分（含补录 {_hours(row.makeup_minutes)} 小时）。"
        )
        key = f"makeup:{row.id}:approved:{row.credit_key}"
    else:
        title = f"补录未通过 · {activity.title}"
        body = f"您在「{activity.title}」的服务记录补录未通过审核：{row.review_note or ''}。已计入的时长和积分不变。"
        key = f"makeup:{row.id}:rejected:{now.isoformat()}"
    queue(session, user_id=row.user_id, kind="makeup", title=title, body=body, key=key, now=now)
