"""Holes an adversarial review of the integrity work found, each closed and kept closed: a rate or
window changed after the scans, a cap escaped by re-dating, a newer rule, overlapping spans, a
rejected make-up, a cancelled activity, races between a scan, a correction and an annulment,
dates far out of range and NUL characters. Scenarios are played by insiders."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
import sqlalchemy as sa

from core import clock
from core.db import db, utcnow
from core.errors import Conflict
from points import archive, ledger
from tests.authz import build_world
from tests.factories import fresh
from tests.volunteer_helpers import make_activity
from volunteer import activities, attendance, signups, tokens
from volunteer.models import Activity, Attendance


@pytest.fixture
def w(app):
    return build_world()


def scan(activity, who, at):
    token = tokens.rotating(db.session.get(type(activity), activity.id), at)[0]
    return attendance.scan_venue_code(user=who, token=token, now=at)


def local_at(day, hour, minute=0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=clock.zone())


def scanned_visit(w, who, starts_at, ends_at, scan_in, scan_out, **extra):
    activity = make_activity(w, starts_at=starts_at, ends_at=ends_at, **extra)
    signups.sign_up(user=w.users[who], activity_id=activity.id, now=starts_at - timedelta(hours=2))
    scan(activity, w.users[who], scan_in)
    row, action = scan(activity, w.users[who], scan_out)
    assert action == "check_out"
    return activity, row


def correct(w, activity, who, check_in, check_out, reason="核对"):
    row = attendance.correct(
        actor=w.users["organizer"],
        activity_id=activity.id,
        user_id=w.users[who].id,
        checked_in_at=check_in,
        checked_out_at=check_out,
        reason=reason,
        now=utcnow(),
    )
    fresh()
    return db.session.get(Attendance, row.id, populate_existing=True)


def sound(user) -> None:
    assert ledger.invariant_problems(db.session) == []
    assert archive.verify(db.session, user.id).ok


def test_raising_points_per_hour_after_the_scans_and_re_settling_needs_a_second_person(w):
    """The four-eyes rule compares minutes, not points: an organizer who raises the activity's
    points_per_hour after the fact and 'corrects' an attendance to the very times scanned gets
    ten times the points with no reviewer."""
    resident = w.users["resident"]
    start = utcnow().replace(microsecond=0) - timedelta(hours=5)
    activity, row = scanned_visit(
        w, "resident", start, start + timedelta(hours=2), start, start + timedelta(hours=2), points_per_hour=10
    )
    assert row.points == 20
    with pytest.raises(Conflict) as refused:
        activities.update(actor=w.users["organizer"], activity_id=activity.id, now=utcnow(), points_per_hour=100)
    assert refused.value.code == "activity_settled"
    # Even if the rate changed behind the service's back, re-settling the scanned times is a
    # make-up: more points than the scans earned wait for a reviewer.
    fresh()
    db.session.execute(sa.update(Activity).where(Activity.id == activity.id).values(points_per_hour=100))
    db.session.commit()
    after = correct(w, activity, "resident", row.checked_in_at, row.checked_out_at, reason="重新核对")
    assert after.review == "pending" and ledger.balance(db.session, resident.id) == 20


def test_widening_the_window_after_the_scans_and_re_settling_needs_a_second_person(w):
    """Scans 9-12 at an activity of 10-11 earn 60 minutes; the organizer widens the activity to
    9-12 and 'corrects' to the scanned times: 180 minutes, no make-up, no reviewer."""
    resident = w.users["resident"]
    start = utcnow().replace(microsecond=0) - timedelta(hours=6)
    activity, row = scanned_visit(
        w,
        "resident",
        start + timedelta(hours=1),
        start + timedelta(hours=2),
        start + timedelta(minutes=5),
        start + timedelta(hours=3),
    )
    assert (row.credited_minutes, row.points) == (60, 10)
    with pytest.raises(Conflict) as refused:
        activities.update(
            actor=w.users["organizer"],
            activity_id=activity.id,
            now=utcnow(),
            starts_at=start,
            ends_at=start + timedelta(hours=3),
        )
    assert refused.value.code == "activity_settled"
    fresh()
    db.session.execute(
        sa.update(Activity)
        .where(Activity.id == activity.id)
        .values(starts_at=start, ends_at=start + timedelta(hours=3))
    )
    db.session.commit()
    after = correct(w, activity, "resident", row.checked_in_at, row.checked_out_at, reason="重新核对")
    assert (after.review, after.credited_minutes) == ("pending", 60)
    assert ledger.balance(db.session, resident.id) == 10


def test_moving_a_check_in_to_the_day_before_does_not_escape_the_daily_cap(w):
    """8 hours at A fill the day; 2 more hours at B earn nothing. Moving A's check-in to 23:00 the
    day before keeps A's 480 minutes (no make-up: A's minutes did not grow) but takes them out of
    that day's cap, and a re-settle of B then credits 120 more minutes the same day, unreviewed."""
    resident = w.users["resident"]
    day = clock.today() - timedelta(days=2)
    a, row_a = scanned_visit(w, "resident", local_at(day, 8), local_at(day, 16), local_at(day, 8), local_at(day, 16))
    b, row_b = scanned_visit(w, "resident", local_at(day, 17), local_at(day, 19), local_at(day, 17), local_at(day, 19))
    assert (row_a.credited_minutes, row_b.credited_minutes) == (480, 0)
    moved = correct(w, a, "resident", local_at(day - timedelta(days=1), 23), local_at(day, 16))
    assert (moved.review, moved.credited_minutes) == (None, 480)
    again = correct(w, b, "resident", local_at(day, 17), local_at(day, 19))
    credited_that_day = again.credited_minutes + moved.credited_minutes
    assert credited_that_day <= 480 or again.review == "pending"
    assert ledger.balance(db.session, resident.id) == 80
    sound(resident)


def test_minutes_not_credited_at_another_activity_are_not_subtracted_as_credited_elsewhere(w):
    """A volunteer forgot to scan out at A (window 1 h): checked in at its start, out 3 h later, A
    credits its 60 minutes. The two hours after A ended were served at B; B's back-fill for those
    hours must credit them (after review). Actually A's whole raw span is subtracted as 'already
    credited elsewhere': B gets 0 minutes and not even a review."""
    day = clock.today() - timedelta(days=2)
    _a, row_a = scanned_visit(w, "resident", local_at(day, 9), local_at(day, 10), local_at(day, 9), local_at(day, 12))
    assert row_a.credited_minutes == 60
    b = make_activity(w, starts_at=local_at(day, 10), ends_at=local_at(day, 12))
    signups.sign_up(user=w.users["resident"], activity_id=b.id, now=local_at(day, 8))
    back_filled = correct(w, b, "resident", local_at(day, 10), local_at(day, 12), reason="在 B 服务但无法扫码")
    assert back_filled.review == "pending"  # 120 minutes nobody credited, waiting for a reviewer


# Races on PostgreSQL (on SQLite BEGIN IMMEDIATE serializes every write unit, so these
# interleavings cannot happen there). Each pauses one request at a precise point so that the
# other runs in between: deterministic, not a stress test.


def _in_threads(app, *works):
    """Run each `work()` in its own thread and app context; return results or the exception."""
    import threading

    results: list = [None] * len(works)

    def target(i):
        with app.app_context():
            try:
                results[i] = works[i]()
            except Exception as exc:  # the outcome is what the test inspects
                results[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=target, args=(i,), name=f"work-{i}") for i in range(len(works))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_an_annulment_during_a_check_out_is_not_silently_undone(app, backend, w, monkeypatch):
    """The check-out scan reads the attendance without locking it (only the activity), and annul
    locks only the attendance: an annulment committed between the scan's read and its write is
    overwritten, and the annulled attendance ends up closed and credited."""
    import threading

    if backend.name != "postgresql":
        pytest.skip("SQLite serializes write units")
    start = utcnow().replace(microsecond=0) - timedelta(hours=3)
    activity = make_activity(w, starts_at=start, ends_at=start + timedelta(hours=4))
    resident_id, organizer_id, activity_id = w.users["resident"].id, w.users["organizer"].id, activity.id
    signups.sign_up(user=w.users["resident"], activity_id=activity_id, now=start - timedelta(hours=1))
    scan(activity, w.users["resident"], start)
    db.session.remove()

    scan_read, annulled = threading.Event(), threading.Event()
    real_settle = attendance._settle

    def paused_settle(*args, **kwargs):  # the scan has read the open attendance and not written yet
        scan_read.set()
        annulled.wait(timeout=10)
        return real_settle(*args, **kwargs)

    monkeypatch.setattr(attendance, "_settle", paused_settle)

    def check_out():
        from community.models import User

        who = db.session.get(User, resident_id)
        return scan(activities.get(activity_id), who, start + timedelta(hours=2))[1]

    def annul():
        from community.models import User

        scan_read.wait(timeout=10)
        try:
            return attendance.annul(
                actor=db.session.get(User, organizer_id),
                activity_id=activity_id,
                user_id=resident_id,
                reason="扫错人了",
                now=utcnow(),
            ).status
        finally:
            annulled.set()

    results = _in_threads(app, check_out, annul)
    db.session.remove()
    row = db.session.scalar(sa.select(Attendance).where(Attendance.activity_id == activity_id))
    # Expected: the later of the two wins cleanly — either annulled (no points), or the annul waits
    # and reverses the check-out's credit. Actual: status closed with points, the annul lost.
    assert results[1] == "annulled"
    assert (row.status, ledger.balance(db.session, resident_id)) == ("annulled", 0), results


def test_a_correction_and_an_annulment_at_once_do_not_deadlock_into_a_500(app, backend, w, monkeypatch):
    """correct() locks the activity, then the resident's account, then writes the attendance;
    annul() locks the attendance, then the resident's account. Two organizers (or one double
    submit) at once take the two locks in opposite orders: PostgreSQL kills one with a deadlock
    error that no handler turns into a 4xx."""
    import threading

    if backend.name != "postgresql":
        pytest.skip("SQLite serializes write units")
    start = utcnow().replace(microsecond=0) - timedelta(hours=5)
    activity, row = scanned_visit(w, "resident", start, start + timedelta(hours=3), start, start + timedelta(hours=3))
    assert row.points == 30
    resident_id, organizer_id, activity_id = w.users["resident"].id, w.users["organizer"].id, activity.id
    db.session.remove()

    correction_holds_account, annul_holds_row = threading.Event(), threading.Event()
    real_rule, real_unsettle = attendance._rule, attendance._unsettle

    def paused_rule(activity):  # in correct(), right after awards.hold took the account lock
        if threading.current_thread().name == "work-0":
            correction_holds_account.set()
            annul_holds_row.wait(timeout=10)
        return real_rule(activity)

    def signalling_unsettle(*args, **kwargs):  # in annul(), right after the row lock
        if threading.current_thread().name == "work-1":
            annul_holds_row.set()
        return real_unsettle(*args, **kwargs)

    monkeypatch.setattr(attendance, "_rule", paused_rule)
    monkeypatch.setattr(attendance, "_unsettle", signalling_unsettle)

    def correct_it():
        from community.models import User

        return attendance.correct(
            actor=db.session.get(User, organizer_id),
            activity_id=activity_id,
            user_id=resident_id,
            checked_in_at=start,
            checked_out_at=start + timedelta(hours=2),
            reason="早退一小时",
            now=utcnow(),
        ).status

    def annul_it():
        from community.models import User

        correction_holds_account.wait(timeout=10)
        return attendance.annul(
            actor=db.session.get(User, organizer_id),
            activity_id=activity_id,
            user_id=resident_id,
            reason="扫错人了",
            now=utcnow(),
        ).status

    results = _in_threads(app, correct_it, annul_it)
    from core.errors import DomainError

    raw = [r for r in results if isinstance(r, Exception) and not isinstance(r, DomainError)]
    assert raw == [], f"a raw database error escapes (a 500): {raw!r}"


def test_a_correction_dated_in_year_one_gets_a_4xx_not_a_500(client, w):
    """`checked_in_at` 0001-01-01 passes the schema and `_check_times`; the local-day bounds of the
    daily cap then fall before year 1 (Asia/Shanghai is UTC+8) and an OverflowError escapes."""
    from tests import factories as f

    activity = make_activity(w, start_in=timedelta(hours=-3), hours=2)
    signups.sign_up(user=w.users["resident"], activity_id=activity.id, now=utcnow() - timedelta(hours=4))
    answer = client.put(
        f"/api/v1/activities/{activity.id}/attendances/{w.users['resident'].id}",
        headers=f.bearer(w.users["organizer"]),
        json={
            "checked_in_at": "0001-01-01T00:00:00+00:00",
            "checked_out_at": "0001-01-01T01:00:00+00:00",
            "reason": "x",
        },
    )
    assert answer.status_code == 422, answer.get_json()


def test_the_organizer_correction_form_dated_in_year_one_gets_a_message_not_a_500(client, w):
    """The manage page's correction form: the same year-1 date overflows (OverflowError is not the
    ValueError the page catches)."""
    from tests.authz import csrf_token, sign_in_page

    activity = make_activity(w, start_in=timedelta(hours=-3), hours=2)
    signups.sign_up(user=w.users["resident"], activity_id=activity.id, now=utcnow() - timedelta(hours=4))
    sign_in_page(client, w.users["organizer"])
    answer = client.post(
        f"/organizer/activities/{activity.id}",
        data={
            "csrf_token": csrf_token(client),
            "action": "correct",
            "user_id": str(w.users["resident"].id),
            "checked_in_at": "0001-01-01T00:00",
            "checked_out_at": "0001-01-01T01:00",
            "reason": "补录",
        },
    )
    assert answer.status_code < 500


def test_a_rejected_make_up_leaves_no_check_out_nobody_vouched_for(w):
    """A volunteer is checked in (open); the organizer proposes a check-out as a make-up and a
    reviewer rejects it. 'Nothing moves' (API.md) — yet the proposal already closed the attendance
    at the proposed time, so the record shows a check-out the reviewer refused, and the volunteer
    can no longer scan out."""
    resident = w.users["resident"]
    start = utcnow().replace(microsecond=0) - timedelta(hours=3)
    activity = make_activity(w, starts_at=start, ends_at=start + timedelta(hours=4))
    signups.sign_up(user=resident, activity_id=activity.id, now=start - timedelta(hours=1))
    scan(activity, resident, start)
    proposed_out = start + timedelta(hours=2, minutes=30)
    pending = correct(w, activity, "resident", start, proposed_out, reason="提前离开，补登签退")
    assert pending.review == "pending"
    attendance.reject(
        actor=w.users["reviewer"], activity_id=activity.id, user_id=resident.id, reason="无人证明", now=utcnow()
    )
    fresh()
    row = db.session.get(Attendance, pending.id, populate_existing=True)
    assert row.review == "rejected"
    assert row.checked_out_at != proposed_out, (row.status, row.checked_out_at)


def test_a_reason_with_a_nul_character_gets_a_4xx_not_a_500(client, w):
    """PostgreSQL refuses NUL in text: a reason carrying '\\x00' passes the schemas (Length only) and
    the database error escapes as a 500, on the correction and the adjustment routes alike (SQLite
    stores it). Expected: 422 (or the character stripped) on both databases."""
    from tests import factories as f

    activity = make_activity(w, start_in=timedelta(hours=-3), hours=2)
    signups.sign_up(user=w.users["resident"], activity_id=activity.id, now=utcnow() - timedelta(hours=4))
    corrected = client.put(
        f"/api/v1/activities/{activity.id}/attendances/{w.users['resident'].id}",
        headers=f.bearer(w.users["organizer"]),
        json={
            "checked_in_at": activity.starts_at.isoformat(),
            "checked_out_at": activity.ends_at.isoformat(),
            "reason": "忘记\x00扫码",
        },
    )
    adjusted = client.post(
        f"/api/v1/residents/{w.users['resident'].id}/adjustments",
        headers={**f.bearer(w.users["admin"]), "Idempotency-Key": "nul-1"},
        json={"points": 5, "reason": "奖励\x00"},
    )
    assert (corrected.status_code < 500, adjusted.status_code < 500) == (True, True), (
        corrected.status_code,
        adjusted.status_code,
    )


def test_a_cancelled_activity_takes_no_back_fill(w):
    """Cancelling is refused while the activity has attendance, but nothing stops a back-fill
    after the cancellation: an activity that officially never took place gets a make-up, and the
    reviewer's page does not show the activity's state (the activity must be 'published' or
    'finished' to take attendance, as scans require)."""
    resident = w.users["resident"]
    activity = make_activity(w, start_in=timedelta(hours=-4), hours=2)
    signups.sign_up(user=resident, activity_id=activity.id, now=utcnow() - timedelta(hours=5))
    activities.cancel(actor=w.users["organizer"], activity_id=activity.id, now=utcnow())
    from core.errors import DomainError

    try:
        correct(w, activity, "resident", activity.starts_at, activity.ends_at, reason="其实活动照常进行了")
        attendance.approve(actor=w.users["reviewer"], activity_id=activity.id, user_id=resident.id, now=utcnow())
    except DomainError:
        pass  # refused: the expected outcome
    fresh()
    assert ledger.balance(db.session, resident.id) == 0  # actual: 20 points for a cancelled activity


def test_a_re_settle_keeps_the_rule_the_credit_used(w):
    """API.md: a rule change 'applies to attendances settled after it and each credit keeps the rule
    it used'. An admin raises the region's points_per_hour; the organizer 'corrects' an old
    attendance to its own scanned times (no make-up: same minutes) and it is re-credited at the new
    rate, no reviewer involved."""
    from points import policies

    resident = w.users["resident"]
    start = utcnow().replace(microsecond=0) - timedelta(hours=5)
    activity, row = scanned_visit(w, "resident", start, start + timedelta(hours=2), start, start + timedelta(hours=2))
    assert row.points == 20  # the built-in 10 points an hour
    policies.set_rule(
        actor=w.users["admin"], region=w.regions["county"], category=None, now=utcnow(), points_per_hour=50
    )
    after = correct(w, activity, "resident", row.checked_in_at, row.checked_out_at, reason="核对")
    assert ledger.balance(db.session, resident.id) == 20 or after.review == "pending"  # actual: 100, review null


def test_a_correction_to_the_same_times_does_not_make_old_points_young_again(w):
    """Annual expiry dates points by the service they record. A correction of a 2025 attendance
    to its own scanned times reverses the old credit and credits it again today; the points are
    still 2025's and still lapse at the 2027 settlement."""
    from datetime import date

    from points import expiry, policies

    resident = w.users["resident"]
    policies.set_policy(
        actor=None, region=w.regions["county"], now=utcnow(), expiry="annual", settlement_month=3, settlement_day=1
    )
    day = date(2025, 6, 1)
    activity, row = scanned_visit(
        w, "resident", local_at(day, 9), local_at(day, 12), local_at(day, 9), local_at(day, 12)
    )
    assert row.points == 30
    assert expiry.next_lapse(resident, date(2027, 2, 1)).points == 30
    same = correct(w, activity, "resident", row.checked_in_at, row.checked_out_at, reason="核对")
    assert same.review is None
    assert expiry.next_lapse(resident, date(2027, 2, 1)).points == 30
