"""Turning service time into points: a pure function, no database, no clock.

Credited time is the overlap of [check-in, check-out] with the activity window widened by the
rule's grace, rounded down to the rule's unit; below the minimum it is nothing; it is capped by
what is left of the person's daily allowance. Minutes already credited to the person elsewhere
(overlapping attendances) are never counted again. Points = credited hours × points per hour, rounded
down to a whole point (integers only). Defaults: 30-minute unit and minimum, 8 hours a day, 10
points an hour (DESIGN §2).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Rule:
    unit_minutes: int = 30
    minimum_minutes: int = 30
    daily_cap_minutes: int = 480
    points_per_hour: int = 10
    grace_before_minutes: int = 0
    grace_after_minutes: int = 0
    version: int = 0  # the id of the stored rule row (0: the built-in defaults)

    def __post_init__(self) -> None:
        if self.unit_minutes <= 0 or self.daily_cap_minutes <= 0:
            raise ValueError("unit and daily cap must be positive")
        if min(self.minimum_minutes, self.points_per_hour, self.grace_before_minutes, self.grace_after_minutes) < 0:
            raise ValueError("rule values cannot be negative")


@dataclass(frozen=True)
class Credit:
    check_in: datetime
    check_out: datetime
    window_start: datetime
    window_end: datetime
    overlap_minutes: int
    credited_minutes: int
    points: int
    reason: str  # "ok", "below_minimum", "daily_cap", "capped", "no_overlap"
    rule: Rule
    elsewhere_minutes: int = 0  # minutes of this window already credited at another activity

    def explanation(self) -> str:
        """E.g. '15 分 = 1.5 小时 × 10 分/小时（按 30 分钟取整）'."""
        r = self.rule
        hours = _hours(self.credited_minutes)
        text = f"{self.points} 分 = {hours} 小时 × {r.points_per_hour} 分/小时（按 {r.unit_minutes} 分钟取整）"
        if self.reason == "below_minimum":
            text += f"；实际 {self.overlap_minutes} 分钟，不足 {r.minimum_minutes} 分钟不计"
        elif self.reason in ("daily_cap", "capped"):
            text += f"；每日最多计 {_hours(r.daily_cap_minutes)} 小时"
        elif self.reason == "no_overlap":
            text += "；签到时间不在活动时间内"
        if self.elsewhere_minutes:
            text += f"；其中 {self.elsewhere_minutes} 分钟已在其他活动计入，不重复计"
        return text

    def as_details(self) -> dict:
        return {
            "check_in": self.check_in.isoformat(),
            "check_out": self.check_out.isoformat(),
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "overlap_minutes": self.overlap_minutes,
            "credited_minutes": self.credited_minutes,
            "points": self.points,
            "reason": self.reason,
            "elsewhere_minutes": self.elsewhere_minutes,
            "rule": asdict(self.rule),
            "explanation": self.explanation(),
        }


def _hours(minutes: int) -> str:
    value = minutes / 60
    return f"{value:g}" if value == int(value) else f"{value:.2f}".rstrip("0")


def credit(
    check_in: datetime,
    check_out: datetime,
    window_start: datetime,
    window_end: datetime,
    rule: Rule,
    already_credited_today: int = 0,
    credited_elsewhere: Iterable[tuple[datetime, datetime]] = (),
) -> Credit:
    """Credited minutes and points for one attendance (all datetimes timezone-aware).
    `credited_elsewhere`: the person's time spans already credited at other activities."""
    if check_out < check_in:
        raise ValueError("check-out before check-in")
    start = max(check_in, window_start - timedelta(minutes=rule.grace_before_minutes))
    end = min(check_out, window_end + timedelta(minutes=rule.grace_after_minutes))
    elsewhere = _covered_seconds(start, end, credited_elsewhere) // 60 if end > start else 0
    # Grace lets an early arrival or a late finish count, but never beyond the activity's length.
    overlap = max(0, int((end - start).total_seconds() // 60) - elsewhere)
    overlap = min(overlap, max(0, int((window_end - window_start).total_seconds() // 60)))
    reason = "ok" if overlap > 0 else "no_overlap"
    minutes = overlap // rule.unit_minutes * rule.unit_minutes
    if overlap and minutes < max(rule.minimum_minutes, 1):
        minutes, reason = 0, "below_minimum"
    left_today = max(0, rule.daily_cap_minutes - already_credited_today)
    if minutes > left_today:
        minutes = left_today // rule.unit_minutes * rule.unit_minutes
        reason = "daily_cap" if minutes == 0 else "capped"
    points = minutes * rule.points_per_hour // 60
    return Credit(check_in, check_out, window_start, window_end, overlap, minutes, points, reason, rule, elsewhere)


def _covered_seconds(start: datetime, end: datetime, spans: Iterable[tuple[datetime, datetime]]) -> int:
    """Seconds of [start, end) covered by the union of `spans`."""
    clipped = sorted((max(a, start), min(b, end)) for a, b in spans if min(b, end) > max(a, start))
    covered, reach = 0.0, start
    for a, b in clipped:
        a = max(a, reach)
        if b > a:
            covered += (b - a).total_seconds()
            reach = b
    return int(covered)
