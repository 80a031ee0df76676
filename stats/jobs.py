"""Scheduled work of statistics: keep the rollups fresh (every ten minutes, incrementally), rebuild
them nightly (which also follows residents who moved), and write the monthly report on the 1st."""

from __future__ import annotations

from datetime import datetime

from core.jobs import JobSet
from stats import refresh, reports

jobs = JobSet()


@jobs.job("stats-refresh", minute="*/10")
def stats_refresh(*, now: datetime) -> str:
    """Bring the statistics rollups up to date with every change since the last run."""
    return str(refresh.refresh(now=now))


@jobs.job("stats-rebuild", hour=3, minute=40)
def stats_rebuild(*, now: datetime) -> str:
    """Recompute every day of the statistics rollups from the source rows."""
    return str(refresh.refresh(now=now, full=True))


@jobs.job("monthly-report", day=1, hour=1, minute=30)
def monthly_report(*, now: datetime) -> str:
    """Write last month's report (每月通报) of every county and city, with the archive root."""
    written = reports.write_month(now=now)
    return f"wrote {len(written)} monthly reports"
