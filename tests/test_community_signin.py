"""Sign-in limits (issue 9, finding 5): counted atomically, short locks with their end shown,
per-address slowing that a stranger cannot turn into a lock-out, and the admin's unlock; each with
the counts in the database and in Redis (issue 13)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from community import signin
from community.models import User
from core import clock
from core.audit import AuditEntry
from core.db import db, utcnow
from core.errors import DomainError
from tests import factories as f
from tests.authz import csrf_token, sign_in_page
from tests.test_core_concurrency import run_threads

PHONE = "13912345678"
WRONG = "Wrong12345"


@pytest.fixture(params=["database", "redis"], autouse=True)
def counts_in(request) -> str:
    """Every test here runs with the counts in the database and in Redis (REDIS_URL)."""
    if request.param == "redis":
        request.getfixturevalue("shared_redis")
    return request.param


@pytest.fixture
def resident(app) -> User:
    f.region("4301", "桃江县", "county")
    f.region("430101", "桃花江镇", "township", "4301")
    f.region("430102", "武潭镇", "township", "4301")
    return f.user("430101", name="李四", phone=PHONE)


def attempt(password: str, *, ip: str, now: datetime, phone: str = PHONE) -> str | DomainError:
    """Sign in through the service; "ok" or the refusal."""
    try:
        signin.authenticate(phone, password, ip=ip, now=now)
    except DomainError as refusal:
        return refusal
    return "ok"


def post_token(client, password: str, *, ip: str = "127.0.0.1", phone: str = PHONE):
    return client.post(
        "/api/v1/auth/token", json={"phone": phone, "password": password}, environ_base={"REMOTE_ADDR": ip}
    )


def lock_out(now: datetime, *, phone: str = PHONE) -> DomainError:
    """Five wrong passwords from five addresses: the account locks on the fifth."""
    outcomes = [attempt(WRONG, ip=f"10.9.0.{i}", now=now, phone=phone) for i in range(5)]
    assert [o.code for o in outcomes] == ["bad_credentials"] * 4 + ["account_locked"]
    return outcomes[-1]


def reload(user: User) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


def count_password_checks(monkeypatch) -> list[int]:
    calls: list[int] = []
    lock = threading.Lock()
    real = signin.verify_password

    def counting(password_hash, password):
        with lock:
            calls.append(1)
        return real(password_hash, password)

    monkeypatch.setattr(signin, "verify_password", counting)
    return calls


# Atomic counting -------------------------------------------------------------------------------


def test_forty_parallel_wrong_passwords_get_at_most_five_password_checks(app, resident, monkeypatch):
    checks = count_password_checks(monkeypatch)
    results = run_threads(app, 40, lambda i: attempt(WRONG, ip=f"10.1.{i}.1", now=utcnow()))
    assert all(isinstance(r, DomainError) for r in results), results
    assert {r.code for r in results} <= {"bad_credentials", "account_locked"}
    assert len(checks) <= app.config["LOGIN_MAX_FAILURES"]
    assert reload(resident).locked_until > utcnow()
    assert attempt(f.PASSWORD, ip="10.2.0.1", now=utcnow()).code == "account_locked"


def test_forty_parallel_wrong_passwords_from_one_address_never_lock_the_account(app, resident, monkeypatch):
    checks = count_password_checks(monkeypatch)
    results = run_threads(app, 40, lambda i: attempt(WRONG, ip="10.1.0.1", now=utcnow()))
    assert {r.code for r in results} <= {"bad_credentials", "login_throttled"}
    assert len(checks) <= app.config["LOGIN_ADDRESS_ACCOUNT_FAILURES"]
    assert reload(resident).locked_until is None
    assert attempt(f.PASSWORD, ip="10.2.0.1", now=utcnow()) == "ok"


def test_parallel_wrong_passwords_through_the_api_lock_the_account(app, resident):
    def post(i: int) -> int:
        return post_token(app.test_client(), WRONG, ip=f"10.3.{i}.1").status_code

    statuses = run_threads(app, 12, post)
    assert set(statuses) <= {401, 429} and statuses.count(401) <= app.config["LOGIN_MAX_FAILURES"] - 1
    assert post_token(app.test_client(), f.PASSWORD, ip="10.4.0.1").status_code == 429


def test_a_successful_sign_in_starts_the_count_afresh(app, resident):
    now = utcnow()
    remaining = [attempt(WRONG, ip=f"10.5.0.{i}", now=now).remaining_attempts for i in range(3)]
    assert remaining == [3, 3, 2]  # the lower of this address's tries on the account and the account's
    assert attempt(f.PASSWORD, ip="10.5.0.9", now=now) == "ok"
    assert reload(resident).failed_logins == 0
    assert attempt(WRONG, ip="10.5.0.1", now=now).remaining_attempts == 3


def test_failures_older_than_the_window_no_longer_count(app, resident):
    now = utcnow()
    for i in range(4):
        attempt(WRONG, ip=f"10.6.0.{i}", now=now)
    later = now + timedelta(minutes=app.config["LOGIN_FAILURE_WINDOW_MINUTES"], seconds=1)
    assert attempt(WRONG, ip="10.6.0.9", now=later).code == "bad_credentials"
    assert reload(resident).locked_until is None


# A temporary lock with its end shown -------------------------------------------------------------


def test_a_lock_is_short_escalates_moderately_and_is_forgotten_after_a_day(app, resident):
    now = utcnow()
    lengths = []
    for _ in range(5):
        refusal = lock_out(now)
        lengths.append(refusal.until - now)
        assert int(refusal.headers["Retry-After"]) == int((refusal.until - now).total_seconds())
        now = refusal.until + timedelta(seconds=1)
    assert lengths == [timedelta(minutes=m) for m in (5, 10, 20, 30, 30)]
    a_day_later = now + timedelta(hours=app.config["LOGIN_LOCK_FORGET_HOURS"])
    assert lock_out(a_day_later).until - a_day_later == timedelta(minutes=5)
    assert reload(resident).lockouts == 1


def test_while_locked_no_password_is_checked_and_after_the_lock_the_right_one_works(app, resident, monkeypatch):
    now = utcnow()
    refusal = lock_out(now)
    checks = count_password_checks(monkeypatch)
    assert attempt(f.PASSWORD, ip="10.7.0.1", now=now + timedelta(minutes=4)).code == "account_locked"
    assert checks == []
    assert attempt(f.PASSWORD, ip="10.7.0.1", now=refusal.until + timedelta(seconds=1)) == "ok"
    user = reload(resident)
    assert (user.failed_logins, user.locked_until, user.lockouts) == (0, None, 0)


def test_a_locked_account_gets_429_with_retry_after_and_the_local_end_time(client, resident):
    statuses = [post_token(client, WRONG, ip=f"10.8.0.{i}").status_code for i in range(5)]
    assert statuses == [401] * 4 + [429]
    locked = post_token(client, f.PASSWORD, ip="10.8.1.1")
    body = locked.get_json()
    assert locked.status_code == 429 and locked.mimetype == "application/problem+json"
    assert body["code"] == "account_locked"
    until = datetime.fromisoformat(body["locked_until"])
    assert until.utcoffset() is not None
    assert 0 < int(locked.headers["Retry-After"]) <= 5 * 60
    assert abs((until - utcnow()).total_seconds() - int(locked.headers["Retry-After"])) < 5
    shown = clock.local(until.replace(second=0, microsecond=0) + timedelta(minutes=1)).strftime("%H:%M")
    assert shown in body["detail"]


def test_each_wrong_password_says_how_many_tries_remain(client, resident):
    answers = [post_token(client, WRONG) for _ in range(4)]
    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    assert [a.get_json()["remaining_attempts"] for a in answers[:3]] == [3, 2, 1]
    assert {a.get_json()["code"] for a in answers[:3]} == {"bad_credentials"}
    assert answers[3].get_json()["code"] == "login_throttled" and "locked_until" in answers[3].get_json()


def test_the_sign_in_page_shows_the_tries_left_and_the_end_of_a_lock(client, resident):
    def login(password: str):
        form = {"phone": PHONE, "password": password, "csrf_token": csrf_token(client)}
        return client.post("/login", data=form)

    first = login(WRONG)
    assert first.status_code == 401 and 'data-remaining="3"' in first.get_data(as_text=True)
    assert f'value="{PHONE}"' in first.get_data(as_text=True)  # what was typed is kept
    login(WRONG)
    login(WRONG)
    slowed = login(WRONG)
    html = slowed.get_data(as_text=True)
    assert slowed.status_code == 429 and int(slowed.headers["Retry-After"]) > 0
    assert 'data-code="login_throttled"' in html and "data-until=" in html


# A stranger cannot lock a resident out -------------------------------------------------------------


def test_a_stranger_at_one_address_cannot_lock_a_resident_out(app, resident):
    start = utcnow()
    codes = set()
    for second in range(0, 2 * 3600, 40):
        outcome = attempt(WRONG, ip="203.0.113.66", now=start + timedelta(seconds=second))
        codes.add(outcome.code)
        assert outcome.code != "account_locked"
    assert codes == {"bad_credentials", "login_throttled"}
    assert reload(resident).lockouts == 0
    assert attempt(f.PASSWORD, ip="10.10.0.1", now=start + timedelta(hours=2)) == "ok"


def test_one_address_guessing_many_accounts_is_slowed(client, resident, app):
    app.config["LOGIN_ADDRESS_FAILURES"] = 5
    try:
        answers = [post_token(client, "Abcd1234x", phone=f"1390000{i:04d}") for i in range(7)]
    finally:
        app.config["LOGIN_ADDRESS_FAILURES"] = 50
    assert [a.status_code for a in answers] == [401] * 5 + [429, 429]
    assert answers[5].get_json()["code"] == "login_throttled"


def test_one_address_may_sign_in_60_times_a_minute_among_some_failures(client, resident, app):
    for i in range(10):
        assert post_token(client, WRONG, phone=f"1390001{i:04d}").status_code == 401
    for _ in range(70):
        assert post_token(client, f.PASSWORD).status_code == 200


# Admin unlock ----------------------------------------------------------------------------------------


@pytest.fixture
def admins(resident):
    county_admin = f.grant(f.user("4301", name="周管理"), "admin", "region", "4301")
    other_admin = f.grant(f.user("430102", name="吴管理"), "admin", "region", "430102")
    organizer = f.grant(f.user("430101", name="赵组织"), "reviewer", "region", "430101")
    return {"admin": county_admin, "admin_elsewhere": other_admin, "reviewer": organizer}


def test_an_admin_over_the_region_unlocks_a_locked_resident(client, resident, admins):
    lock_out(utcnow())
    response = client.post(f"/api/v1/users/{resident.id}/unlock", headers=f.bearer(admins["admin"]))
    assert response.status_code == 200
    assert response.get_json()["id"] == resident.id and response.get_json()["locked_until"] is None
    user = reload(resident)
    assert (user.failed_logins, user.locked_until, user.lockouts) == (0, None, 0)
    assert post_token(client, f.PASSWORD, ip="10.11.0.1").status_code == 200
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "user.unlock"))
    assert entry.actor_id == admins["admin"].id and entry.object_id == str(resident.id)
    assert entry.before["locked_until"] is not None


def test_an_unlock_also_lifts_the_slowing_of_the_residents_own_address(client, resident, admins):
    now = utcnow()
    for _ in range(4):
        attempt(WRONG, ip="10.12.0.1", now=now)
    assert attempt(f.PASSWORD, ip="10.12.0.1", now=now).code == "login_throttled"
    signin.unlock(actor=admins["admin"], user_id=resident.id, now=now + timedelta(seconds=1))
    assert attempt(f.PASSWORD, ip="10.12.0.1", now=now + timedelta(seconds=2)) == "ok"


@pytest.mark.parametrize(("actor", "status"), [("admin_elsewhere", 404), ("reviewer", 403), ("self", 403)])
def test_unlock_is_refused_to_other_roles_and_to_admins_of_other_regions(client, resident, admins, actor, status):
    lock_out(utcnow())
    who = resident if actor == "self" else admins[actor]
    response = client.post(f"/api/v1/users/{resident.id}/unlock", headers=f.bearer(who))
    assert response.status_code == status
    assert response.get_json()["code"] in ("forbidden", "not_found")
    assert reload(resident).locked_until > utcnow()


def test_unlocking_an_unknown_user_is_404(client, resident, admins):
    response = client.post("/api/v1/users/999999/unlock", headers=f.bearer(admins["admin"]))
    assert response.status_code == 404 and response.get_json()["code"] == "user_not_found"


def test_the_admin_people_page_shows_the_lock_and_its_unlock_button_works(client, resident, admins):
    lock_out(utcnow())
    sign_in_page(client, admins["admin"])
    page = client.get("/admin/roles", query_string={"q": "李四"}).get_data(as_text=True)
    assert "data-locked-until=" in page and f"/admin/users/{resident.id}/unlock" in page
    done = client.post(f"/admin/users/{resident.id}/unlock", data={"q": "李四", "csrf_token": csrf_token(client)})
    assert done.status_code == 302
    assert reload(resident).locked_until is None


def test_the_unlock_button_of_an_admin_elsewhere_changes_nothing(client, resident, admins):
    lock_out(utcnow())
    sign_in_page(client, admins["admin_elsewhere"])
    client.post(f"/admin/users/{resident.id}/unlock", data={"csrf_token": csrf_token(client)})
    assert reload(resident).locked_until > utcnow()
