"""Sign-in counts in Redis (issue 13): no database write per attempt, keys that expire and name no
phone, installations apart by prefix, and what happens when Redis stops answering (the database
counts, and a lock made in Redis still holds). test_community_signin.py runs every rule on both."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import sqlalchemy as sa

from community import signin
from community.models import LoginAttempt, User
from core.db import db, utcnow
from tests import factories as f
from tests.conftest import TEST_REDIS_URL
from tests.test_community_signin import PHONE, WRONG, attempt, lock_out, reload

NOBODY_LISTENS = "redis://127.0.0.1:1/0"


@pytest.fixture
def resident(app) -> User:
    f.region("4301", "桃江县", "county")
    return f.user("4301", name="李四", phone=PHONE)


def attempts_in_database() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(LoginAttempt))


def test_attempts_are_counted_in_redis_not_in_the_database(app, resident, shared_redis):
    now = utcnow()
    assert [attempt(WRONG, ip="10.20.0.1", now=now).remaining_attempts for _ in range(3)] == [3, 2, 1]
    assert attempt(f.PASSWORD, ip="10.20.0.2", now=now) == "ok"
    assert attempts_in_database() == 0
    prefix = app.config["REDIS_PREFIX"]
    keys = sorted(k.decode() for k in shared_redis.scan_iter(match=f"{prefix}*"))
    assert f"{prefix}signin:addr:10.20.0.1" in keys and f"{prefix}signin:user:{resident.id}" in keys
    assert not any(PHONE in key for key in keys), "no phone number in a key"
    window = app.config["LOGIN_FAILURE_WINDOW_MINUTES"] * 60
    for key in keys:
        assert 0 < shared_redis.ttl(key) <= 24 * 3600 + 30 * 60 + 60, key
    assert 0 < shared_redis.ttl(f"{prefix}signin:addr:10.20.0.1") <= window + 60
    # The right password took its own attempt back off the address's count.
    assert shared_redis.zcard(f"{prefix}signin:addr:10.20.0.2") == 0


def test_two_installations_sharing_a_redis_count_apart(app, resident, shared_redis):
    now = utcnow()
    for _ in range(3):
        attempt(WRONG, ip="10.21.0.1", now=now)
    app.config["REDIS_PREFIX"] += "other:"
    assert attempt(WRONG, ip="10.21.0.1", now=now).remaining_attempts == 3


def test_when_redis_does_not_answer_the_database_counts_and_locks(app, resident, caplog):
    app.config["REDIS_URL"] = NOBODY_LISTENS
    try:
        with caplog.at_level(logging.ERROR, logger="core.redisstore"):
            lock_out(utcnow())
        assert attempt(f.PASSWORD, ip="10.22.0.1", now=utcnow()).code == "account_locked"
    finally:
        app.config["REDIS_URL"] = None
        app.extensions.pop("moralcredit.redis", None)
    assert attempts_in_database() == 5
    # Tried once, then left alone for REDIS_RETRY_SECONDS: sign-ins do not each wait for it.
    assert len([r for r in caplog.records if "failed" in r.getMessage()]) == 1


def test_a_lock_made_in_redis_holds_when_redis_goes_away(app, resident, shared_redis):
    now = utcnow()
    refusal = lock_out(now)
    assert reload(resident).locked_until == refusal.until
    app.config["REDIS_URL"] = NOBODY_LISTENS
    assert attempt(f.PASSWORD, ip="10.23.0.1", now=now + timedelta(minutes=1)).code == "account_locked"
    assert attempt(f.PASSWORD, ip="10.23.0.1", now=refusal.until + timedelta(seconds=1)) == "ok"


def test_a_lock_made_while_redis_was_away_holds_and_escalates_when_it_is_back(app, resident, shared_redis):
    now = utcnow()
    assert attempt(WRONG, ip="10.24.0.1", now=now).code == "bad_credentials"  # counted in Redis
    app.config["REDIS_URL"] = NOBODY_LISTENS
    first = lock_out(now)  # the database counts, and locks for 5 minutes
    assert first.until - now == timedelta(minutes=5)
    app.config["REDIS_URL"] = TEST_REDIS_URL
    assert attempt(f.PASSWORD, ip="10.24.0.2", now=now + timedelta(minutes=1)).code == "account_locked"
    later = first.until + timedelta(seconds=1)
    second = lock_out(later)  # back in Redis, which takes the lock's level from the row
    assert second.until - later == timedelta(minutes=10)
    assert reload(resident).lockouts == 2
    assert attempts_in_database() == 5


def test_an_unlock_in_the_database_lifts_a_lock_redis_holds(app, resident, shared_redis):
    now = utcnow()
    lock_out(now)
    signin.unlock(actor=None, user_id=resident.id, now=now + timedelta(seconds=1))
    assert attempt(f.PASSWORD, ip="10.25.0.1", now=now + timedelta(seconds=2)) == "ok"
