"""Signing in under limits, and the admin's unlock.

The counts live where every app process and host shares them: in Redis when `REDIS_URL` is set
(community/signin_redis.py), else in the database (`login_attempt`, `users.failed_logins/
locked_until/lockouts/failures_reset_at`); a lock is always written to the user's row too, and
while Redis does not answer the database counts (docs/operations.md "Redis"). Only failures
count, within a sliding window (core/config.py, docs/operations.md "Sign-in limits"):
- an account locks for a short, moderately escalating time after `LOGIN_MAX_FAILURES` failures
  from any addresses; the refusal says until when, and an admin over its region can unlock it;
- one address is slowed on one account a failure before that, so a stranger at one address can
  never lock a resident out, and on every account after a generous number of failures (a village
  office or kiosk shares one address and signs many people in; successes never count).
Each attempt is counted before its password is checked, so parallel guesses cannot outrun a limit.
This module never reads or writes points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from community import signin_redis
from community.messages import DETAILS
from community.models import LoginAttempt, User
from core import audit, clock, redisstore
from core.db import db, unit_of_work
from core.errors import Conflict, NotFound, RateLimited, Unauthorized
from core.security import authorize, verify_password


class BadCredentials(Unauthorized):
    """A wrong phone or password, with the tries left before sign-in is slowed or locked."""

    def __init__(self, remaining: int) -> None:
        self.remaining_attempts = remaining
        super().__init__("bad_credentials", DETAILS["bad_credentials"].format(remaining=remaining))


class OtpRequired(Unauthorized):
    """The password is right and the account has a second factor: its code is needed too."""

    def __init__(self, user: User, attempt_id: int | None, remaining: int) -> None:
        self.user_id, self.token_version = user.id, user.token_version
        self.attempt_id, self.remaining_attempts = attempt_id, remaining
        super().__init__("otp_required")


class BadCode(Unauthorized):
    """A wrong, used or expired second-factor code, with the tries left before the lock."""

    def __init__(self, remaining: int) -> None:
        self.remaining_attempts = remaining
        super().__init__("otp_invalid", DETAILS["otp_invalid"].format(remaining=remaining))


class SignInRefused(RateLimited):
    """Sign-in refused until `until`: the account is locked or this address is slowed."""

    def __init__(self, code: str, until: datetime, *, now: datetime, detail: str | None = None) -> None:
        self.until = until
        detail = (detail or DETAILS[code]).format(until=_local_time(until, now))
        super().__init__(code, detail, retry_after=math.ceil((until - now).total_seconds()))


def _local_time(moment: datetime, now: datetime) -> str:
    """`moment` rounded up to the minute in local time; with the date when it is not today."""
    local = clock.local(moment)
    if local.second or local.microsecond:
        local = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return f"{local:%H:%M}" if local.date() == clock.today(now) else f"{local.month}月{local.day}日 {local:%H:%M}"


@dataclass(frozen=True)
class Limits:
    """The sign-in limits in force (core/config.py, docs/operations.md "Sign-in limits")."""

    account: int
    address_account: int
    address: int
    window: timedelta
    lock: timedelta
    lock_max: timedelta
    forget: timedelta

    @classmethod
    def from_config(cls) -> Limits:
        config = current_app.config
        account = max(2, config["LOGIN_MAX_FAILURES"])
        return cls(
            account=account,
            # One address alone must never reach the account's limit (a stranger must not lock).
            address_account=max(1, min(config["LOGIN_ADDRESS_ACCOUNT_FAILURES"], account - 1)),
            address=max(1, config["LOGIN_ADDRESS_FAILURES"]),
            window=timedelta(minutes=config["LOGIN_FAILURE_WINDOW_MINUTES"]),
            lock=timedelta(minutes=config["LOGIN_LOCK_MINUTES"]),
            lock_max=timedelta(minutes=max(config["LOGIN_LOCK_MAX_MINUTES"], config["LOGIN_LOCK_MINUTES"])),
            forget=timedelta(hours=config["LOGIN_LOCK_FORGET_HOURS"]),
        )

    def lock_for(self, level: int) -> timedelta:
        """The length of the `level`-th lock in a row (0 first): doubling, capped."""
        return min(self.lock * 2 ** min(level, 16), self.lock_max)


@dataclass(frozen=True)
class _Reservation:
    """One attempt, counted as a failure before its password is checked."""

    attempt_id: int
    user_id: int | None
    password_hash: str | None
    remaining: int  # tries left after this one, should it fail
    locked_until: datetime | None  # set when this attempt locked the account
    throttled_until: datetime | None  # set when this attempt used this address's last try
    region_id: int | None
    lockouts: int = 0  # the lock's level, when this attempt locked the account
    counted: signin_redis.Counted | None = None  # counted in Redis, not in the database


def _failures(session, *, since: datetime, ip: str | None = None, phone: str | None = None):
    """(count, oldest) of failed attempts since `since`, from one address and/or on one phone."""
    query = sa.select(sa.func.count(), sa.func.min(LoginAttempt.at)).where(
        LoginAttempt.ok.is_(False), LoginAttempt.at >= since
    )
    if ip is not None:
        query = query.where(LoginAttempt.ip == ip)
    if phone is not None:
        query = query.where(LoginAttempt.phone == phone)
    count, oldest = session.execute(query).one()
    return count or 0, oldest


def _reserve(phone: str, ip: str, now: datetime, limits: Limits) -> _Reservation:
    """Count this attempt before its password is checked, or refuse it (429) without a check.

    One short write transaction: the account's row is locked (PostgreSQL; SQLite's BEGIN
    IMMEDIATE serializes every writer) while its failures are counted and this attempt is written,
    so N parallel guesses at one account get at most the limit's number of password checks.
    """
    with unit_of_work() as session:
        since = now - limits.window
        count, oldest = _failures(session, since=since, ip=ip)
        if count >= limits.address:
            raise SignInRefused(
                "login_throttled", oldest + limits.window, now=now, detail=DETAILS["login_throttled_address"]
            )
        user = session.execute(
            sa.select(
                User.id, User.password_hash, User.region_id, User.locked_until, User.lockouts, User.failures_reset_at
            )
            .where(User.phone == phone)
            .with_for_update()
        ).one_or_none()
        if user is not None and user.locked_until is not None and user.locked_until > now:
            raise SignInRefused("account_locked", user.locked_until, now=now)
        # A success, a lock or an unlock starts the counts afresh.
        if user is not None and user.failures_reset_at is not None and user.failures_reset_at >= since:
            since = user.failures_reset_at + timedelta(microseconds=1)
        here, here_oldest = _failures(session, since=since, ip=ip, phone=phone)
        if here >= limits.address_account:
            raise SignInRefused("login_throttled", here_oldest + limits.window, now=now)
        remaining = limits.address_account - here - 1
        throttled_until = (here_oldest or now) + limits.window if remaining == 0 else None
        locked_until = None
        if user is not None:
            account, _ = _failures(session, since=since, phone=phone)
            failures = account + 1
            remaining = min(remaining, limits.account - failures)
            values: dict = {"failed_logins": failures}
            if failures >= limits.account:
                recent = user.locked_until is not None and user.locked_until > now - limits.forget
                level = user.lockouts if recent else 0
                locked_until = now + limits.lock_for(level)
                values.update(failed_logins=0, locked_until=locked_until, lockouts=level + 1, failures_reset_at=now)
            # Guarded: no attempt is counted (nor its password checked) while a lock stands.
            changed = session.execute(
                sa.update(User)
                .where(User.id == user.id, sa.or_(User.locked_until.is_(None), User.locked_until <= now))
                .values(**values)
            ).rowcount
            if not changed:
                raise SignInRefused("account_locked", user.locked_until or now, now=now)
        attempt = LoginAttempt(at=now, ip=ip, phone=phone, ok=False)
        session.add(attempt)
        session.flush()
        return _Reservation(
            attempt_id=attempt.id,
            user_id=user.id if user is not None else None,
            password_hash=user.password_hash if user is not None else None,
            remaining=remaining,
            locked_until=locked_until,
            throttled_until=throttled_until,
            region_id=user.region_id if user is not None else None,
        )


def _reserve_shared(phone: str, ip: str, now: datetime, limits: Limits) -> _Reservation | None:
    """Count this attempt in Redis (`_reserve`'s rules), or refuse it; None without Redis or when
    it does not answer, for the database to count instead."""
    shared = redisstore.shared()
    if shared is None:
        return None
    user = db.session.execute(
        sa.select(
            User.id, User.password_hash, User.region_id, User.locked_until, User.lockouts, User.failures_reset_at
        ).where(User.phone == phone)
    ).one_or_none()
    db.session.commit()  # end the read: the password check holds no transaction
    if user is not None and user.locked_until is not None and user.locked_until > now:
        raise SignInRefused("account_locked", user.locked_until, now=now)
    secret = current_app.config["PII_KEY"] or current_app.config["SECRET_KEY"]
    try:
        outcome = signin_redis.reserve(shared, phone=phone, ip=ip, now=now, limits=limits, user=user, secret=secret)
    except redisstore.Error as exc:
        shared.failed(exc)
        return None
    if isinstance(outcome, signin_redis.Refused):
        if outcome.code == "address_throttled":
            raise SignInRefused("login_throttled", outcome.until, now=now, detail=DETAILS["login_throttled_address"])
        raise SignInRefused(outcome.code, outcome.until, now=now)
    return _Reservation(
        attempt_id=outcome.attempt_id,
        user_id=user.id if user is not None else None,
        password_hash=user.password_hash if user is not None else None,
        remaining=outcome.remaining,
        locked_until=outcome.locked_until,
        throttled_until=outcome.throttled_until,
        region_id=user.region_id if user is not None else None,
        lockouts=outcome.lockouts,
        counted=outcome,
    )


def _forget_shared(counted: signin_redis.Counted) -> None:
    shared = redisstore.store()
    if shared is None:
        return
    try:
        signin_redis.forget(shared, counted)
    except redisstore.Error as exc:
        shared.failed(exc)


def authenticate(phone: str, password: str, *, ip: str, now: datetime, otp: str | None = None) -> User:
    """Check a phone and password under the sign-in limits; return the user or raise 401/429.

    The attempt is counted first (`_reserve`), the slow password check runs outside any write
    transaction so that sign-ins do not queue behind each other's hashing, and a second short
    transaction records the outcome: a success starts the counts afresh. A person with a second
    factor also needs `otp` (a TOTP or recovery code): without it, or with a wrong one, the attempt
    stays a failure (401 `otp_required` / `otp_invalid`), so codes cannot be guessed past the limits.
    """
    phone = (phone or "").strip()[:20]
    ip = (ip or "unknown")[:64]
    limits = Limits.from_config()
    reservation = _reserve_shared(phone, ip, now, limits) or _reserve(phone, ip, now, limits)
    # An unknown phone costs the same time as a real check (verify_password): phones stay private.
    ok = verify_password(reservation.password_hash, password or "")
    return _finish(reservation, now, password_ok=ok, otp=otp or None, ask_otp=not otp)


def confirm_code(
    user_id: int,
    code: str,
    *,
    ip: str,
    now: datetime,
    first_attempt: int | None = None,
    token_version: int | None = None,
) -> User:
    """Check a second-factor code under the same limits as a password: the page's second sign-in
    step (`first_attempt`: the password step's attempt, counted as a failure until now; void if the
    password changed since, `token_version`), and the code a signed-in person gives to turn their
    second factor off or renew their recovery codes."""
    person = db.session.get(User, user_id)
    if person is None or person.totp_secret is None:
        raise Conflict("otp_not_enabled")
    if token_version is not None and person.token_version != token_version:
        raise Conflict("otp_sign_in_expired")
    limits = Limits.from_config()
    phone, ip = person.phone, (ip or "unknown")[:64]
    reservation = _reserve_shared(phone, ip, now, limits) or _reserve(phone, ip, now, limits)
    return _finish(reservation, now, password_ok=True, otp=code or "", ask_otp=False, first_attempt=first_attempt)


def _finish(
    reservation: _Reservation,
    now: datetime,
    *,
    password_ok: bool,
    otp: str | None,
    ask_otp: bool,
    first_attempt: int | None = None,
) -> User:
    """Record an attempt's outcome (a success starts the counts afresh), then refuse or return."""
    from community import totp

    needs_code = False
    with unit_of_work() as session:
        user = session.get(User, reservation.user_id) if reservation.user_id is not None else None
        ok = password_ok and user is not None
        if ok and user.totp_secret is not None:
            needs_code = True
            ok = otp is not None and totp.check(session, user, otp, now) is not None
        if ok:
            # Attempts counted in the database turn into successes; one counted in Redis is
            # forgotten there after the commit (and the row's reset below overrides its counts).
            attempts = [reservation.attempt_id] if reservation.counted is None else []
            attempts += [first_attempt] if first_attempt else []
            if attempts:
                session.execute(sa.update(LoginAttempt).where(LoginAttempt.id.in_(attempts)).values(ok=True))
            session.execute(
                sa.update(User)
                .where(User.id == user.id)
                .values(
                    failed_logins=0,
                    locked_until=None,
                    lockouts=0,
                    failures_reset_at=now,
                    last_login_at=now if user.active else User.last_login_at,
                )
            )
        elif reservation.locked_until is not None:
            if reservation.counted is not None:
                session.execute(
                    sa.update(User)
                    .where(User.id == reservation.user_id)
                    .values(
                        failed_logins=0,
                        locked_until=reservation.locked_until,
                        lockouts=reservation.lockouts,
                        failures_reset_at=now,
                    )
                )
            audit.record(
                "user.locked",
                "user",
                reservation.user_id,
                after={"locked_until": reservation.locked_until},
                region_id=reservation.region_id,
                now=now,
            )
    if ok and reservation.counted is not None:
        _forget_shared(reservation.counted)
    # Refusals come after the commit, so that failures count across processes.
    if ok and not user.active:
        raise Unauthorized("account_disabled")
    if ok:
        return user
    if reservation.locked_until is not None:
        raise SignInRefused("account_locked", reservation.locked_until, now=now)
    if reservation.throttled_until is not None:
        raise SignInRefused("login_throttled", reservation.throttled_until, now=now)
    if needs_code and ask_otp:
        # The page's code step marks the password step's attempt a success: only one counted in
        # the database has an id to mark (Redis forgets by the row's reset instead).
        first = reservation.attempt_id if reservation.counted is None else None
        raise OtpRequired(user, first, reservation.remaining)
    if needs_code:
        raise BadCode(reservation.remaining)
    raise BadCredentials(reservation.remaining)


def unlock(*, actor: User | None, user_id: int, now: datetime) -> User:
    """An admin over the user's region ends a lock-out and starts the counts afresh (audited)."""
    if actor is not None:
        authorize(actor, "admin")
    with unit_of_work() as session:
        user = session.get(User, user_id, with_for_update=True, populate_existing=True)
        if user is None:
            raise NotFound("user_not_found")
        if actor is not None:
            authorize(actor, "admin", user, hide=True)
        before = {"failed_logins": user.failed_logins, "locked_until": user.locked_until, "lockouts": user.lockouts}
        user.failed_logins = 0
        user.locked_until = None
        user.lockouts = 0
        user.failures_reset_at = now
        audit.record(
            "user.unlock",
            "user",
            user.id,
            actor=actor,
            before=before,
            after={"failed_logins": 0, "locked_until": None, "lockouts": 0},
            region_id=user.region_id,
            now=now,
        )
    return user
