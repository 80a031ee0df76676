"""The one clock: local days in the service's time zone, not UTC dates."""

from __future__ import annotations

from datetime import UTC, date, datetime

from core import clock


def test_early_morning_in_beijing_is_already_today_although_utc_says_yesterday(app):
    moment = datetime(2026, 11, 24, 17, 30, tzinfo=UTC)  # 01:30 on the 25th in Asia/Shanghai
    assert clock.today(moment) == date(2026, 11, 25)
    start, end = clock.bounds_of(moment)
    assert start == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
    assert end == datetime(2026, 11, 25, 16, 0, tzinfo=UTC)


def test_a_period_covers_both_end_days_whole(app):
    start, end = clock.period_range(date(2026, 1, 1), date(2026, 1, 31))
    assert start == datetime(2025, 12, 31, 16, 0, tzinfo=UTC)
    assert end == datetime(2026, 1, 31, 16, 0, tzinfo=UTC)
    assert clock.month_start(datetime(2026, 2, 28, 16, 30, tzinfo=UTC)) == datetime(2026, 2, 28, 16, 0, tzinfo=UTC)
