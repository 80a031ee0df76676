"""Activities for tests: one running now (check-in open), one upcoming, drafts and finished ones."""

from __future__ import annotations

from datetime import timedelta

from core.db import utcnow
from volunteer import activities, signups


def make_activity(w, *, start_in=timedelta(minutes=-30), hours=2, publish=True, **extra):
    start = utcnow().replace(microsecond=0) + start_in
    values = dict(
        title="河道垃圾清理",
        description="带好手套",
        category="环境整治",
        address="花果山村河边",
        starts_at=start,
        ends_at=start + timedelta(hours=hours),
    )
    values.update(extra)
    activity = activities.create(
        actor=w.users["organizer"], department_id=w.departments["d1"].id, region_code="43010101", now=utcnow(), **values
    )
    if publish:
        activities.publish(actor=w.users["organizer"], activity_id=activity.id, now=utcnow())
    return activity


def running(w):
    """Now: check-in open; walk-ins welcome, so every signed-in caller may scan."""
    if "v_running" not in w.extra:
        w.extra["v_running"] = make_activity(w, allow_walk_in=True).id
    return w.extra["v_running"]


def upcoming(w):
    if "v_upcoming" not in w.extra:
        w.extra["v_upcoming"] = make_activity(w, start_in=timedelta(days=1)).id
    return w.extra["v_upcoming"]


def draft(w):
    if "v_draft" not in w.extra:
        w.extra["v_draft"] = make_activity(w, start_in=timedelta(days=2), publish=False).id
    return w.extra["v_draft"]


def finished(w):
    if "v_finished" not in w.extra:
        activity_id = make_activity(w, start_in=timedelta(days=-1)).id
        activities.finish(actor=w.users["organizer"], activity_id=activity_id, now=utcnow())
        w.extra["v_finished"] = activity_id
    return w.extra["v_finished"]


def pending_signup(w):
    if "v_pending" not in w.extra:
        activity_id = make_activity(w, start_in=timedelta(days=1), requires_approval=True).id
        w.extra["v_pending"] = (
            activity_id,
            signups.sign_up(user=w.users["target"], activity_id=activity_id, now=utcnow()).id,
        )
    return w.extra["v_pending"]
