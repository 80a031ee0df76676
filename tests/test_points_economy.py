"""A stateful property-based test of the whole points economy, played by insiders who try to cheat.

Hypothesis drives random sequences of venue scans and kiosk scans (at overlapping activities),
corrections, make-ups and their reviews, annulments, the missed-check-out job, cancellations,
redemptions and voids, stock receipts with retried keys, deeds with objections and their
resolution, admin adjustments and annual expiry, by random actors: the organizer, reviewer, clerk,
grid worker and admin are residents too, and keep trying to act for themselves. After every step:

- the ledger and the stock ledger are sound (balances are the sums of their transfers, sum to zero,
  never negative; debts are cached right and nobody holds points while owing);
- every archive verifies (chain, anchor, entries ↔ transfers, sum ↔ balance);
- every resident's spendable points, less their debt, equal what their settled attendance and
  posted deeds and adjustments earned, less what their completed redemptions took and what
  expired;
- no credited minute was counted twice, nobody credited or redeemed for themselves, and every
  credited make-up was approved by a second person.

The suite runs a bounded number of examples on SQLite and PostgreSQL; `bench/economy_long.py`
runs the same machine for long (ECONOMY_EXAMPLES, ECONOMY_STEPS).
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from community import accounts
from core import clock
from core.db import db, utcnow
from core.errors import DomainError
from exchange import inventory
from exchange.models import Redemption
from points import archive, deeds, expiry, ledger, policies
from points.models import Account, Deed, DeedObjection, Transfer
from tests import factories as f
from tests.authz import build_world
from tests.factories import fresh
from tests.volunteer_helpers import make_activity
from volunteer import activities, attendance, signups, tokens
from volunteer.models import Activity, Attendance

EXAMPLES = int(os.environ.get("ECONOMY_EXAMPLES", "8"))
STEPS = int(os.environ.get("ECONOMY_STEPS", "40"))
PHASES = tuple(Phase) if os.environ.get("ECONOMY_SHRINK") else (Phase.explicit, Phase.reuse, Phase.generate)

PEOPLE = ("resident", "target", "organizer", "reviewer", "clerk", "grid_worker", "admin")
ACTORS = ("organizer", "reviewer", "admin", "clerk", "grid_worker", "resident")


class Economy(RuleBasedStateMachine):
    backend = None  # set by the test: the database to wipe before each example
    app = None

    def __init__(self) -> None:
        super().__init__()
        db.session.remove()
        self.backend.reset()
        self.w = w = build_world()
        # Insiders with two hats: the organizer and a resident also review in the township.
        f.grant(w.users["organizer"], "reviewer", "region", "430101")
        f.grant(w.users["resident"], "reviewer", "region", "430101")
        self.client = self.app.test_client()
        self.tokens = {name: f.token(w.users[name]) for name in (*PEOPLE, "clerk_elsewhere")}
        # Two activities that ended two hours ago and overlap for an hour, and one still running.
        self.acts = [
            make_activity(w, start_in=timedelta(hours=-6), hours=3, allow_walk_in=True).id,
            make_activity(w, start_in=timedelta(hours=-5), hours=3, allow_walk_in=True).id,
            make_activity(w, start_in=timedelta(hours=-1), hours=4, allow_walk_in=True).id,
        ]
        for activity_id in self.acts:
            for name in PEOPLE:
                with contextlib.suppress(DomainError):
                    signups.sign_up(user=w.users[name], activity_id=activity_id, now=utcnow() - timedelta(hours=7))
        # Everyone served two hours at the first activity, by scanning: points to spend and to lose.
        first = self.activity(0)
        for name in PEOPLE:
            for at in (first.starts_at, first.starts_at + timedelta(hours=2)):
                token = tokens.rotating(first, at)[0]
                attendance.scan_venue_code(user=self.user(name), token=token, now=at)
        self.redemptions: list[int] = []
        self.keys: list[str] = []
        self.n = 0

    # -- helpers ---------------------------------------------------------------------------------

    def user(self, name: str):
        return db.session.get(type(self.w.users[name]), self.w.users[name].id)

    def activity(self, index: int) -> Activity:
        return db.session.get(Activity, self.acts[index], populate_existing=True)

    def attempt(self, call, *args, **kwargs):
        """Run one move; a refusal (a DomainError) is an allowed outcome, never a half-change."""
        self.n += 1
        try:
            return call(*args, **kwargs)
        except DomainError:
            fresh()
            return None

    def api(self, method: str, path: str, who: str, body=None, key: str | None = None):
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        if key:
            headers["Idempotency-Key"] = key
        response = self.client.open(f"/api/v1{path}", method=method, json=body, headers=headers)
        assert response.status_code < 500, response.get_data(as_text=True)
        fresh()
        return response

    # -- attendance ------------------------------------------------------------------------------

    @rule(who=st.sampled_from(PEOPLE), index=st.integers(0, 2), minute=st.integers(0, 300))
    def venue_scan(self, who, index, minute):
        activity = self.activity(index)
        at = min(activity.starts_at + timedelta(minutes=minute), utcnow())
        token = tokens.rotating(activity, at)[0]
        self.attempt(attendance.scan_venue_code, user=self.user(who), token=token, now=at)

    @rule(
        who=st.sampled_from(PEOPLE), index=st.integers(0, 2), minute=st.integers(-30, 200), length=st.integers(1, 240)
    )
    def serve(self, who, index, minute, length):
        """A volunteer scans in, and later out, at one venue."""
        activity = self.activity(index)
        start = min(activity.starts_at + timedelta(minutes=minute), utcnow() - timedelta(minutes=2))
        for at in (start, min(start + timedelta(minutes=length), utcnow())):
            token = tokens.rotating(activity, at)[0]
            self.attempt(attendance.scan_venue_code, user=self.user(who), token=token, now=at)

    @rule(operator=st.sampled_from(("organizer", "reviewer")), who=st.sampled_from(PEOPLE), index=st.integers(0, 2))
    def kiosk_scan(self, operator, who, index):
        at = utcnow()
        code = accounts.personal_code(self.user(who), at)[0]
        self.attempt(
            attendance.scan_personal_code,
            organizer=self.user(operator),
            activity_id=self.acts[index],
            code=code,
            now=at,
        )

    @rule(
        actor=st.sampled_from(("organizer", "admin")),
        who=st.sampled_from(PEOPLE),
        index=st.integers(0, 2),
        start=st.integers(-60, 240),
        length=st.integers(0, 300),
    )
    def correct(self, actor, who, index, start, length):
        activity = self.activity(index)
        checked_in = activity.starts_at + timedelta(minutes=start)
        self.attempt(
            attendance.correct,
            actor=self.user(actor),
            activity_id=activity.id,
            user_id=self.w.users[who].id,
            checked_in_at=checked_in,
            checked_out_at=checked_in + timedelta(minutes=length),
            reason="核对",
            now=utcnow(),
        )

    def pick(self, data, *conditions) -> tuple[int, int] | None:
        """An existing attendance (activity, volunteer) matching `conditions`, drawn by Hypothesis."""
        rows = db.session.execute(
            sa.select(Attendance.activity_id, Attendance.user_id).where(*conditions).order_by(Attendance.id)
        ).all()
        fresh()
        return tuple(data.draw(st.sampled_from(rows))) if rows else None

    @rule(data=st.data(), actor=st.sampled_from(ACTORS), yes=st.booleans())
    def review_makeup(self, data, actor, yes):
        found = self.pick(data, Attendance.review == "pending")
        if found:
            path = f"/activities/{found[0]}/attendances/{found[1]}/{'approve' if yes else 'reject'}"
            self.api("POST", path, actor, {} if yes else {"reason": "不符"})

    @rule(data=st.data(), start=st.integers(-60, 240), length=st.integers(0, 300))
    def correct_existing(self, data, start, length):
        found = self.pick(data, Attendance.status != "annulled")
        if found:
            activity = db.session.get(Activity, found[0])
            checked_in = activity.starts_at + timedelta(minutes=start)
            self.attempt(
                attendance.correct,
                actor=self.user("organizer"),
                activity_id=found[0],
                user_id=found[1],
                checked_in_at=checked_in,
                checked_out_at=checked_in + timedelta(minutes=length),
                reason="核对",
                now=utcnow(),
            )

    @rule(who=st.sampled_from(PEOPLE), qty=st.integers(1, 2), lose=st.sampled_from(("annul", "correct")))
    def spend_then_lose(self, who, qty, lose):
        """Spend the points at the counter, then lose the service they came from: a debt."""
        self.redeem("clerk", who, qty, "oil", True)
        row = db.session.scalar(
            sa.select(Attendance).where(Attendance.user_id == self.w.users[who].id, Attendance.points > 0).limit(1)
        )
        if row is None:
            return
        activity_id, user_id, checked_in = row.activity_id, row.user_id, row.checked_in_at
        fresh()
        if lose == "annul":
            self.attempt(
                attendance.annul,
                actor=self.user("organizer"),
                activity_id=activity_id,
                user_id=user_id,
                reason="作废",
                now=utcnow(),
            )
        else:
            self.attempt(
                attendance.correct,
                actor=self.user("organizer"),
                activity_id=activity_id,
                user_id=user_id,
                checked_in_at=checked_in,
                checked_out_at=checked_in + timedelta(minutes=30),
                reason="核减",
                now=utcnow(),
            )

    @rule(
        who=st.sampled_from(PEOPLE),
        index=st.integers(0, 2),
        length=st.integers(30, 240),
        reviewer=st.sampled_from(ACTORS),
    )
    def make_up_and_review(self, who, index, length, reviewer):
        """The organizer adds minutes by hand; someone (anyone) tries to approve them at once."""
        self.correct("organizer", who, index, 0, length)
        path = f"/activities/{self.acts[index]}/attendances/{self.w.users[who].id}/approve"
        self.api("POST", path, reviewer, {})

    @rule(data=st.data())
    def annul(self, data):
        found = self.pick(data, Attendance.status != "annulled")
        if found:
            self.attempt(
                attendance.annul,
                actor=self.user("organizer"),
                activity_id=found[0],
                user_id=found[1],
                reason="作废",
                now=utcnow(),
            )

    @rule(who=st.sampled_from(PEOPLE), index=st.integers(0, 2))
    def confirm_auto_close(self, who, index):
        self.attempt(
            attendance.confirm,
            actor=self.user("organizer"),
            activity_id=self.acts[index],
            user_id=self.w.users[who].id,
            now=utcnow(),
        )

    @rule()
    def close_missed_checkouts(self):
        self.attempt(attendance.close_missed_checkouts, now=utcnow())

    @rule(index=st.integers(0, 2))
    def cancel(self, index):
        self.attempt(activities.cancel, actor=self.user("organizer"), activity_id=self.acts[index], now=utcnow())

    # -- the supermarket -------------------------------------------------------------------------

    @rule(
        clerk=st.sampled_from(("clerk", "clerk_elsewhere")),
        who=st.sampled_from(PEOPLE),
        qty=st.integers(1, 3),
        item=st.sampled_from(("oil", "rice")),
        with_code=st.booleans(),
    )
    def redeem(self, clerk, who, qty, item, with_code):
        self.n += 1
        resident = self.user(who)
        body = {"lines": [{"item_id": self.w.items[item].id, "qty": qty}]}
        if with_code:
            body["code"] = accounts.personal_code(resident, utcnow())[0]
        else:
            body["resident_id"] = resident.id
        answer = self.api("POST", f"/stores/{self.w.stores['s1'].id}/redemptions", clerk, body, key=f"r{self.n}")
        if answer.status_code == 201:
            self.redemptions.append(answer.get_json()["id"])

    @rule(data=st.data(), by=st.sampled_from(("clerk", "admin")), with_code=st.booleans())
    def void(self, data, by, with_code):
        if not self.redemptions:
            return
        redemption_id = data.draw(st.sampled_from(self.redemptions))
        row = db.session.get(Redemption, redemption_id)
        body = {"reason": "退货"}
        if with_code:
            body["code"] = accounts.personal_code(
                db.session.get(type(self.w.users["resident"]), row.resident_id), utcnow()
            )[0]
        self.api("POST", f"/redemptions/{redemption_id}/void", by, body)

    @rule(qty=st.integers(1, 5), reuse=st.booleans(), item=st.sampled_from(("oil", "rice")))
    def receive_stock(self, qty, reuse, item):
        self.n += 1
        key = self.keys[-1] if reuse and self.keys else f"s{self.n}"
        self.keys.append(key)
        self.api(
            "POST", f"/items/{self.w.items[item].id}/stock", "clerk", {"delta": qty, "reason": "purchase"}, key=key
        )

    # -- deeds and adjustments -------------------------------------------------------------------

    @rule(by=st.sampled_from(("grid_worker", "admin")), who=st.sampled_from(PEOPLE), good=st.booleans())
    def record_deed(self, by, who, good):
        self.api(
            "POST",
            "/deeds",
            by,
            {
                "resident_id": self.w.users[who].id,
                "deed_type": "haorenhaoshi" if good else "luanrenglaji",
                "description": "随机",
                "occurred_on": utcnow().date().isoformat(),
            },
        )

    @rule(data=st.data(), by=st.sampled_from(ACTORS), yes=st.booleans())
    def review_deed(self, data, by, yes):
        pending = db.session.scalars(sa.select(Deed.id).where(Deed.status == "pending")).all()
        if not pending:
            return
        deed_id = data.draw(st.sampled_from(pending))
        self.api("POST", f"/deeds/{deed_id}/{'approve' if yes else 'reject'}", by, {})

    @rule(data=st.data(), by=st.sampled_from(PEOPLE))
    def object_to_deed(self, data, by):
        on_notice = db.session.scalars(sa.select(Deed.id).where(Deed.status == "approved")).all()
        fresh()
        if on_notice:
            deed_id = data.draw(st.sampled_from(on_notice))
            self.api("POST", f"/deeds/{deed_id}/objections", by, {"reason": "不实，当天此人不在村里"})

    @rule(data=st.data(), by=st.sampled_from(ACTORS), upheld=st.booleans())
    def resolve_objection(self, data, by, upheld):
        rows = db.session.execute(
            sa.select(DeedObjection.deed_id, DeedObjection.id).where(DeedObjection.status == "open")
        ).all()
        fresh()
        if rows:
            deed_id, objection_id = data.draw(st.sampled_from(rows))
            body = {"decision": "upheld" if upheld else "dismissed", "note": "核实"}
            self.api("POST", f"/deeds/{deed_id}/objections/{objection_id}/resolve", by, body)

    @rule(years=st.integers(0, 2))
    def apply_expiry(self, years):
        """Annual expiry on the settlement day, now or years ahead (when everything earned is old)."""
        county = self.w.regions["county"]
        policies.set_policy(actor=None, region=county, now=utcnow(), expiry="annual")
        day = clock.today().replace(month=1, day=1)
        settlement = clock.day_start(day.replace(year=day.year + years)) + timedelta(hours=1)
        self.attempt(expiry.apply, now=settlement)

    @rule()
    def post_deeds(self):
        self.attempt(deeds.post_due, now=utcnow() + timedelta(days=30))

    @rule(by=st.sampled_from(("admin", "reviewer")), who=st.sampled_from(PEOPLE), points=st.integers(-30, 30))
    def adjust(self, by, who, points):
        self.n += 1
        body = {"points": points or 1, "reason": "调整"}
        self.api("POST", f"/residents/{self.w.users[who].id}/adjustments", by, body, key=f"a{self.n}")

    # -- what must always hold -------------------------------------------------------------------

    @invariant()
    def ledgers_are_sound(self):
        fresh()
        assert ledger.invariant_problems(db.session) == []
        assert inventory.invariant_problems(db.session) == []

    @invariant()
    def every_archive_verifies_and_explains_the_balance(self):
        for name in PEOPLE:
            user_id = self.w.users[name].id
            result = archive.verify(db.session, user_id)
            assert result.ok, (name, result.problems)
            account_id = ledger.resident_account(db.session, user_id)
            account = db.session.get(Account, account_id, populate_existing=True)
            earned = db.session.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(Attendance.points), 0)).where(Attendance.user_id == user_id)
            )
            signed = sa.case((Transfer.to_account_id == account_id, Transfer.amount), else_=-Transfer.amount)
            awarded = db.session.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(signed), 0)).where(
                    Transfer.kind.in_(("deed", "deduction", "adjustment", "expiry")),
                    sa.or_(Transfer.from_account_id == account_id, Transfer.to_account_id == account_id),
                )
            )
            spent = db.session.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(Redemption.total_points), 0)).where(
                    Redemption.resident_id == user_id, Redemption.status == "completed"
                )
            )
            assert account.balance - account.debt == earned + awarded - spent, name
            fresh()

    @invariant()
    def nobody_profits_from_their_own_power_and_no_minute_counts_twice(self):
        rows = db.session.scalars(sa.select(Attendance).where(Attendance.credited_minutes > 0)).all()
        for row in rows:
            assert row.recorded_by_id != row.user_id and row.reviewed_by_id != row.user_id
            if row.makeup_minutes:
                # Hand-added minutes are credited only as a second person approved them.
                assert row.review in ("approved", "pending") and row.reviewed_by_id is not None
            else:
                scanned = (
                    (row.scanned_out_at - row.scanned_in_at).total_seconds() // 60
                    if row.scanned_in_at and row.scanned_out_at
                    else 0
                )
                assert row.credited_minutes <= scanned
        by_person: dict[int, list[Attendance]] = {}
        for row in rows:
            by_person.setdefault(row.user_id, []).append(row)
        for mine in by_person.values():
            spans = sorted((r.checked_in_at, r.checked_out_at) for r in mine)
            covered, reach = 0.0, None
            for start, end in spans:
                start = max(start, reach) if reach else start
                if end > start:
                    covered += (end - start).total_seconds()
                    reach = end
            assert sum(r.credited_minutes for r in mine) <= covered // 60
        for row in db.session.scalars(sa.select(Redemption)).all():
            assert row.clerk_id != row.resident_id
        fresh()


def test_the_points_economy_holds_under_random_insiders(app, backend):
    Economy.backend, Economy.app = backend, app
    run_state_machine_as_test(
        Economy,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            # No shrinking in the suite: a failure prints its whole sequence of steps, and
            # shrinking a database-backed machine takes minutes. The long run in bench/ shrinks.
            phases=PHASES,
        ),
    )
