"""Scheduled housekeeping of the people domain."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from community.models import LoginAttempt
from core.db import unit_of_work
from core.jobs import JobSet

jobs = JobSet()


@jobs.job("prune-login-attempts", minute=17)
def prune_login_attempts(*, now: datetime) -> str:
    """Forget sign-in attempts older than a day (they only serve the per-address limit)."""
    with unit_of_work() as session:
        result = session.execute(sa.delete(LoginAttempt).where(LoginAttempt.at < now - timedelta(days=1)))
    return f"pruned {result.rowcount}"
