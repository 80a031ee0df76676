"""User administration: deactivating and reactivating accounts, and the one-time password-reset
code an admin gives a resident who cannot sign in (the unlock is `signin.unlock`; finding people
is `community.queries.people_within`).

An admin acts only on people of their region subtree, never on themselves, and never on someone
who holds a role beyond the admin's own reach: a village admin must not take over the county
admin who happens to live in the village by resetting their password. Every change is audited;
a reset code is kept only as a keyed hash and is never written to the audit log.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from community import accounts, services
from community.messages import DETAILS, MESSAGES
from community.models import PasswordReset, User
from core import audit
from core.bounds import is_ascii_digits
from core.db import unit_of_work
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.security import authorize, covers, hash_password, keyed_digest, password_problems

RESET_DIGITS = 8


def manageable(session, actor: User, user_id: int) -> User:
    """The person, locked, if `actor` may administer their account (else 403/404)."""
    authorize(actor, "admin")
    user = session.get(User, user_id, with_for_update=True, populate_existing=True)
    if user is None:
        raise NotFound("user_not_found")
    authorize(actor, "admin", user, hide=True)
    if user.id == actor.id:
        raise Forbidden("not_for_yourself")
    for grant in user.grants:
        target = services.resolve_scope(grant.scope_type, services.scope_label(grant, session=session), session=session)
        if target is None or not covers(actor, "admin", target):
            raise Forbidden("user_outranks")
    return user


def _end_open_codes(session, user_id: int, now: datetime) -> None:
    session.execute(
        sa.update(PasswordReset)
        .where(PasswordReset.user_id == user_id, PasswordReset.ended_at.is_(None))
        .values(ended_at=now)
    )


def set_active(*, actor: User, user_id: int, active: bool, now: datetime) -> User:
    """Deactivate (every token, session and personal code of the person stops working at once) or
    reactivate an account. Setting what already holds changes nothing."""
    with unit_of_work() as session:
        user = manageable(session, actor, user_id)
        if user.active == active:
            return user
        before = accounts.snapshot(user)
        user.active = active
        if not active:
            user.token_version += 1  # bearer tokens, sessions and personal codes carry the version
            _end_open_codes(session, user.id, now)
        audit.record(
            "user.reactivate" if active else "user.deactivate",
            "user",
            user.id,
            actor=actor,
            before=before,
            after=accounts.snapshot(user),
            region_id=user.region_id,
            now=now,
        )
    return user


@dataclass(frozen=True)
class IssuedCode:
    """A reset code as the admin sees it, once: the code itself is nowhere else in clear."""

    user: User
    code: str
    expires_at: datetime


def _digest(user_id: int, code: str) -> str:
    return keyed_digest("password-reset", f"{user_id}:{code}")


def issue_password_reset(*, actor: User, user_id: int, now: datetime) -> IssuedCode:
    """A one-time code for the person to set a new password with (on the reset page). Older codes
    stop working; the code works once, for `PASSWORD_RESET_HOURS`, and `PASSWORD_RESET_MAX_FAILURES`
    wrong tries void it."""
    hours = current_app.config["PASSWORD_RESET_HOURS"]
    with unit_of_work() as session:
        user = manageable(session, actor, user_id)
        if not user.active:
            raise Conflict("account_disabled", DETAILS["reset_disabled_account"])
        _end_open_codes(session, user.id, now)
        code = f"{secrets.randbelow(10**RESET_DIGITS):0{RESET_DIGITS}d}"
        reset = PasswordReset(
            user_id=user.id,
            code_hash=_digest(user.id, code),
            issued_by_id=actor.id,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
        session.add(reset)
        session.flush()
        audit.record(
            "user.password_reset.issue",
            "user",
            user.id,
            actor=actor,
            after={"reset_id": reset.id, "expires_at": reset.expires_at},
            region_id=user.region_id,
            now=now,
        )
    return IssuedCode(user, code, reset.expires_at)


def reset_password(*, phone: str, code: str, password: str, now: datetime) -> User:
    """The resident sets a new password with the code the admin gave them. The old password, every
    session and token stop working; a sign-in lock ends. A wrong phone, code, or a code used,
    replaced, expired or worn out all get the same answer, so nothing can be learned by trying."""
    phone, code = (phone or "").strip()[:20], (code or "").replace(" ", "").strip()[:16]
    if problems := password_problems(password or "", phone=phone):
        raise Invalid("weak_password", errors={"password": problems})
    new_hash = hash_password(password)  # before the write transaction: hashing is slow on purpose
    limit = current_app.config["PASSWORD_RESET_MAX_FAILURES"]
    with unit_of_work() as session:
        user = session.scalar(sa.select(User).where(User.phone == phone).with_for_update())
        reset = None
        if user is not None:
            reset = session.scalar(
                sa.select(PasswordReset)
                .where(
                    PasswordReset.user_id == user.id,
                    PasswordReset.ended_at.is_(None),
                    PasswordReset.expires_at > now,
                )
                .order_by(PasswordReset.id.desc())
                .limit(1)
                .with_for_update()
            )
        matches = (
            reset is not None and is_ascii_digits(code) and hmac.compare_digest(reset.code_hash, _digest(user.id, code))
        )
        if reset is not None and not matches:
            # Counted in this transaction, which commits: the refusal is raised after it.
            reset.failures += 1
            if reset.failures >= limit:
                reset.ended_at = now
        if matches:
            reset.ended_at = now
            user.password_hash = new_hash
            user.token_version += 1
            user.password_changed_at = now
            user.failed_logins, user.locked_until, user.lockouts, user.failures_reset_at = 0, None, 0, now
            audit.record(
                "user.password_reset.use",
                "user",
                user.id,
                actor=user,
                after={"reset_id": reset.id},
                region_id=user.region_id,
                now=now,
            )
    if not matches:
        raise Invalid("reset_code_invalid", errors={"code": [MESSAGES["reset_code_invalid"]]})
    return user
