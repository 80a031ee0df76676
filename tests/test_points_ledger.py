"""The ledger is built like a small bank: these tests try to break it.

Invariants: a resident's balance never goes negative; every cached balance equals the sum of the
account's transfers; all balances sum to zero; a key applies once; transfers are never edited.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.db import db, unit_of_work, utcnow
from core.errors import Conflict, Invalid
from points import ledger
from points.models import Account, Transfer
from tests import factories as f
from tests.factories import fresh
from tests.test_core_concurrency import run_threads

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def county(app):
    return f.region("4301", "桃江县", "county")


def accounts_for(user):
    with unit_of_work() as session:
        return (
            ledger.resident_account(session, user.id),
            ledger.issuer_account(session, "region", user.region_id),
            ledger.store_account(session, 1),
        )


def move(source, target, amount, key, **kw):
    with unit_of_work() as session:
        return ledger.transfer(
            session, source=source, target=target, amount=amount, kind="adjustment", key=key, now=utcnow(), **kw
        )


def test_a_transfer_moves_points_once_per_key(county):
    user = f.user("4301")
    mine, issuer, _store = accounts_for(user)
    first = move(issuer, mine, 30, "k1")
    again = move(issuer, mine, 30, "k1")
    assert again.replayed and again.transfer.id == first.transfer.id
    assert ledger.balance(db.session, user.id) == 30
    with pytest.raises(Conflict) as conflict:
        move(issuer, mine, 31, "k1")
    assert conflict.value.code == "idempotency_conflict"
    assert ledger.invariant_problems(db.session) == []


def test_a_resident_cannot_spend_more_than_they_have(county):
    user = f.user("4301")
    mine, issuer, store = accounts_for(user)
    move(issuer, mine, 10, "in")
    with pytest.raises(Invalid) as refused:
        move(mine, store, 11, "out")
    assert refused.value.code == "insufficient_points"
    assert ledger.balance(db.session, user.id) == 10
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Transfer)) == 1


def test_a_deduction_takes_what_there_is_and_records_the_rest_as_unpaid(county):
    user = f.user("4301")
    mine, issuer, _ = accounts_for(user)
    move(issuer, mine, 5, "in")
    taken = move(mine, issuer, 20, "fine", partial=True)
    assert (taken.moved, taken.unpaid) == (5, 15)
    assert taken.transfer.details == {"requested": 20, "unpaid": 15}
    nothing = move(mine, issuer, 20, "fine-2", partial=True)
    assert (nothing.moved, nothing.unpaid, nothing.transfer) == (0, 20, None)
    assert ledger.balance(db.session, user.id) == 0


def test_a_reversal_is_a_new_transfer_and_happens_once(county):
    user = f.user("4301")
    mine, issuer, store = accounts_for(user)
    credit = move(issuer, mine, 40, "credit").transfer
    move(mine, store, 30, "spend")
    with unit_of_work() as session:
        back = ledger.reverse(
            session, session.get(Transfer, credit.id), key="rev-1", now=utcnow(), actor_id=None, reason="签到有误"
        )
    assert (back.moved, back.unpaid) == (10, 30)  # they had spent 30 of the 40
    with pytest.raises(Conflict), unit_of_work() as session:
        ledger.reverse(
            session, session.get(Transfer, credit.id), key="rev-2", now=utcnow(), actor_id=None, reason="again"
        )
    assert ledger.balance(db.session, user.id) == 0
    assert ledger.invariant_problems(db.session) == []


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE transfer SET amount = amount + 1",
        "DELETE FROM transfer",
        "UPDATE account SET balance = -5 WHERE kind = 'resident'",
    ],
)
def test_the_database_itself_refuses_edits_and_negative_balances(county, statement):
    user = f.user("4301")
    mine, issuer, _ = accounts_for(user)
    move(issuer, mine, 10, "in")
    db.session.commit()
    with pytest.raises(sa.exc.DatabaseError), db.engine.begin() as conn:
        conn.execute(sa.text(statement))
    assert ledger.balance(db.session, user.id) == 10


OPS = st.lists(
    st.tuples(
        st.sampled_from(["credit", "spend", "deduct", "reverse", "retry"]), st.integers(min_value=1, max_value=60)
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_random_sequences_agree_with_a_simple_model(county, ops):
    user = f.user("4301")
    mine, issuer, store = accounts_for(user)
    balance = debt = 0
    done: list[tuple[str, int, int, int, bool]] = []  # key, source, target, amount, partial
    reversed_ids: set[int] = set()

    def credited(key: str) -> int:
        """Every credit pays debts first (what the points services do after each credit)."""
        with unit_of_work() as session:
            return sum(p.amount for p in ledger.pay_debts(session, mine, key=key, now=utcnow(), actor_id=None))

    for n, (op, amount) in enumerate(ops):
        key = f"{user.id}:{n}"
        if op == "credit":
            move(issuer, mine, amount, key)
            done.append((key, issuer, mine, amount, False))
            paid = credited(key)
            assert paid == min(debt, balance + amount)
            balance, debt = balance + amount - paid, debt - paid
        elif op == "spend":
            if amount > balance:
                with pytest.raises(Invalid):
                    move(mine, store, amount, key)
            else:
                move(mine, store, amount, key)
                balance -= amount
                done.append((key, mine, store, amount, False))
        elif op == "deduct":
            taken = move(mine, issuer, amount, key, partial=True)
            assert taken.moved == min(amount, balance)
            balance -= taken.moved
            if taken.transfer:
                done.append((key, mine, issuer, taken.moved, True))
        elif op == "reverse" and done:
            original_key = done[amount % len(done)][0]
            original = db.session.scalar(sa.select(Transfer).where(Transfer.idempotency_key == original_key))
            if original.id in reversed_ids or original.kind == "reversal":
                continue
            with unit_of_work() as session:
                back = ledger.reverse(
                    session,
                    session.get(Transfer, original.id),
                    key=f"rev:{key}",
                    now=utcnow(),
                    actor_id=None,
                    reason="model",
                )
            reversed_ids.add(original.id)
            expected = original.amount if original.to_account_id != mine else min(original.amount, balance)
            assert back.moved == expected
            # Always in full: what the resident cannot pay back becomes a debt.
            assert back.moved + back.unpaid == original.amount
            if original.to_account_id == mine:
                balance, debt = balance - expected, debt + original.amount - expected
            else:
                paid = credited(f"rev:{key}")
                balance, debt = balance + expected - paid, debt - paid
        elif op == "retry" and done:
            key_, source, target, moved, partial = done[amount % len(done)]
            if not partial:
                assert move(source, target, moved, key_).replayed
        assert ledger.balance(db.session, user.id) == balance >= 0
        assert db.session.get(Account, mine, populate_existing=True).debt == debt >= 0
        assert not (debt and balance)
    assert ledger.invariant_problems(db.session) == []


def test_eight_threads_hammering_one_account_with_retried_keys(app, county):
    user = f.user("4301")
    mine, issuer, store = accounts_for(user)
    move(issuer, mine, 100, "funding")
    keys = [f"spend-{i}" for i in range(15)]  # 15 × 10 points wanted, only 100 there

    def spend(thread: int) -> list[str]:
        outcomes = []
        for key in keys[thread % 3 :] + keys[: thread % 3]:
            try:
                outcomes.append("replayed" if move(mine, store, 10, key).replayed else "applied")
            except Invalid:
                outcomes.append("refused")
        return outcomes

    results = run_threads(app, 8, spend)
    assert not any(isinstance(r, Exception) for r in results), results
    applied = sum(r.count("applied") for r in results)
    assert applied == 10
    rows = db.session.scalars(sa.select(Transfer).where(Transfer.from_account_id == mine)).all()
    assert len(rows) == 10 and len({r.idempotency_key for r in rows}) == 10
    assert ledger.balance(db.session, user.id) == 0
    assert ledger.invariant_problems(db.session) == []


WORKER = """
import sys, time
from moralcredit import create_app
from core.db import unit_of_work, utcnow
from core.errors import Invalid
from points import ledger
url, mine, store, prefix, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})
applied = 0
with app.app_context():
    for i in range(count):
        try:
            with unit_of_work() as session:
                m = ledger.transfer(session, source=mine, target=store, amount=1, kind="redemption",
                                    key=f"{prefix}-{i % 60}", now=utcnow())
                applied += 0 if m.replayed else 1
        except Invalid:
            pass
        print(i, flush=True)
print("applied", applied, flush=True)
"""


def spawn(backend, mine, store, prefix, count):
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, backend.url, str(mine), str(store), prefix, str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.slow
def test_two_processes_spending_the_same_keys_apply_each_once(app, backend, county):
    user = f.user("4301")
    mine, issuer, store = accounts_for(user)
    move(issuer, mine, 50, "funding")
    db.session.commit()
    workers = [spawn(backend, mine, store, "shared", 120) for _ in range(2)]
    outputs = [w.communicate(timeout=180) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err[-1500:] for _, err in outputs]
    applied = sum(int(out.strip().splitlines()[-1].split()[1]) for out, _ in outputs)
    assert applied == 50  # 60 distinct keys of 1 point, but only 50 points
    fresh()
    assert ledger.balance(db.session, user.id) == 0
    assert ledger.invariant_problems(db.session) == []


@pytest.mark.slow
def test_a_process_killed_mid_load_leaves_the_ledger_whole(app, backend, county):
    user = f.user("4301")
    mine, issuer, store = accounts_for(user)
    move(issuer, mine, 1000, "funding")
    db.session.commit()
    worker = spawn(backend, mine, store, "killed", 100_000)
    deadline = time.monotonic() + 60
    seen = 0
    while seen < 20 and time.monotonic() < deadline:  # let it get well into its work
        if worker.stdout.readline():
            seen += 1
    worker.send_signal(signal.SIGKILL)
    worker.communicate(timeout=30)
    fresh()
    assert ledger.invariant_problems(db.session) == []
    spent = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Transfer.amount), 0)).where(Transfer.from_account_id == mine)
    )
    assert ledger.balance(db.session, user.id) == 1000 - spent
    # A retry of the keys after the crash applies only what had not been applied.
    retry = spawn(backend, mine, store, "killed", 60)
    _out, err = retry.communicate(timeout=120)
    assert retry.returncode == 0, err[-1500:]
    fresh()
    assert ledger.balance(db.session, user.id) == 1000 - 60
    assert ledger.invariant_problems(db.session) == []
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Account).where(Account.balance < 0, Account.kind == "resident")
        )
        == 0
    )
