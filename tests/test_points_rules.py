"""The duration rule at its edges: time served turns into points the same way everywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from points.rules import Rule, credit

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 5, 1, 9, 0, tzinfo=SHANGHAI)
END = datetime(2026, 5, 1, 12, 0, tzinfo=SHANGHAI)
DEFAULT = Rule()


def at(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return datetime(2026, 5, day, hour, minute, tzinfo=SHANGHAI)


def test_the_explanation_reads_like_the_archive():
    c = credit(at(9), at(10, 40), START, END, DEFAULT)
    assert (c.credited_minutes, c.points) == (90, 15)
    assert c.explanation() == "15 分 = 1.5 小时 × 10 分/小时（按 30 分钟取整）"


def test_early_arrival_and_late_leave_are_clipped_to_the_window():
    c = credit(at(8, 10), at(13, 30), START, END, DEFAULT)
    assert (c.overlap_minutes, c.credited_minutes, c.points) == (180, 180, 30)


def test_grace_lets_a_little_early_time_count_but_never_more_than_the_activity():
    rule = Rule(grace_before_minutes=30, grace_after_minutes=30)
    early = credit(at(8, 30), at(11, 0), START, END, rule)
    assert early.credited_minutes == 150
    whole = credit(at(8, 30), at(12, 30), START, END, rule)
    assert whole.credited_minutes == 180  # the activity is 3 hours


def test_below_the_minimum_nothing_is_credited_and_it_says_why():
    c = credit(at(9), at(9, 25), START, END, DEFAULT)
    assert (c.credited_minutes, c.points, c.reason) == (0, 0, "below_minimum")
    assert "不足 30 分钟不计" in c.explanation()


def test_time_is_rounded_down_to_the_unit():
    assert credit(at(9), at(10, 59), START, END, DEFAULT).credited_minutes == 90
    assert credit(at(9), at(10, 59), START, END, Rule(unit_minutes=15, minimum_minutes=15)).credited_minutes == 105


def test_the_daily_cap_counts_what_was_already_credited_that_day():
    long_day = credit(at(8), at(20), at(8), at(20), DEFAULT)
    assert (long_day.credited_minutes, long_day.points, long_day.reason) == (480, 80, "capped")
    second = credit(at(9), at(12), START, END, DEFAULT, already_credited_today=420)
    assert (second.credited_minutes, second.points) == (60, 10)
    full = credit(at(9), at(12), START, END, DEFAULT, already_credited_today=480)
    assert (full.credited_minutes, full.reason) == (0, "daily_cap")


def test_a_second_activity_the_same_day_adds_up_to_the_cap():
    morning = credit(at(8), at(12), at(8), at(12), DEFAULT)
    afternoon = credit(at(13), at(18), at(13), at(18), DEFAULT, already_credited_today=morning.credited_minutes)
    assert morning.credited_minutes + afternoon.credited_minutes == 480


def test_an_overnight_activity_counts_across_midnight():
    c = credit(at(22), at(2, 0, day=2), at(22), at(2, 0, day=2), DEFAULT)
    assert (c.credited_minutes, c.points) == (240, 40)


def test_check_in_outside_the_window_gives_nothing():
    c = credit(at(13), at(14), START, END, DEFAULT)
    assert (c.credited_minutes, c.reason) == (0, "no_overlap")


def test_times_in_any_zone_give_the_same_credit():
    utc = credit(at(9).astimezone(UTC), at(11).astimezone(UTC), START, END, DEFAULT)
    assert utc.credited_minutes == 120


def test_odd_rates_round_points_down_to_whole_points():
    c = credit(at(9), at(9, 30), START, END, Rule(points_per_hour=15))
    assert c.points == 7


def test_invalid_rules_and_times_are_refused():
    with pytest.raises(ValueError):
        Rule(unit_minutes=0)
    with pytest.raises(ValueError):
        Rule(points_per_hour=-1)
    with pytest.raises(ValueError):
        credit(at(11), at(10), START, END, DEFAULT)


@given(
    start=st.integers(min_value=-300, max_value=600),
    length=st.integers(min_value=0, max_value=900),
    already=st.integers(min_value=0, max_value=600),
    unit=st.sampled_from([1, 10, 15, 30, 60]),
    minimum=st.integers(min_value=0, max_value=120),
    pph=st.integers(min_value=0, max_value=60),
)
def test_credit_properties(start, length, already, unit, minimum, pph):
    rule = Rule(unit_minutes=unit, minimum_minutes=minimum, points_per_hour=pph)
    check_in = START + timedelta(minutes=start)
    c = credit(check_in, check_in + timedelta(minutes=length), START, END, rule, already)
    assert 0 <= c.credited_minutes <= min(c.overlap_minutes, 180)
    assert c.credited_minutes % unit == 0
    # The minimum applies to the time served; the daily cap may then leave less than the minimum.
    assert c.credited_minutes == 0 or c.overlap_minutes >= minimum

    assert c.credited_minutes + min(already, 480) <= max(480, already)
    assert c.points == c.credited_minutes * pph // 60
