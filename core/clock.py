"""One clock: "now", the local day and local-day ranges in the service's time zone.

Times are stored in UTC; people live in `MORALCREDIT_TIMEZONE` (default Asia/Shanghai). Every page
default, report period and daily rule asks this module for "today" instead of taking the UTC date,
which is yesterday between 00:00 and 08:00 Beijing time. Services still take `now` as an argument
so that tests control time; this module only converts.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context

from core.db import utcnow

DEFAULT_ZONE = "Asia/Shanghai"


def zone() -> ZoneInfo:
    name = current_app.config.get("TIMEZONE", DEFAULT_ZONE) if has_app_context() else DEFAULT_ZONE
    return ZoneInfo(name)


def now() -> datetime:
    """The current moment (UTC, aware)."""
    return utcnow()


def local(moment: datetime) -> datetime:
    """`moment` seen in the service's time zone."""
    return moment.astimezone(zone())


def today(moment: datetime | None = None) -> date:
    """The local calendar day of `moment` (default: now)."""
    return local(moment or utcnow()).date()


def day_start(day: date) -> datetime:
    """The first instant of a local day, as an aware datetime."""
    return datetime.combine(day, time.min, tzinfo=zone())


def day_range(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a local day."""
    start = day_start(day)
    return start, day_start(day + timedelta(days=1))


def period_range(first: date, last: date) -> tuple[datetime, datetime]:
    """[start of `first`, end of `last`) in local days, both inclusive as people read them."""
    return day_start(first), day_start(last + timedelta(days=1))


def bounds_of(moment: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the local day that contains `moment`."""
    return day_range(today(moment))


def month_start(moment: datetime) -> datetime:
    """The first instant of the local month that contains `moment`."""
    return day_start(today(moment).replace(day=1))
