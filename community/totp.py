"""The second factor: TOTP codes (RFC 6238, 6 digits, 30 s) from an authenticator app, and one-time
recovery codes for a lost phone; and the region rule that admins must use it.

The secret is kept encrypted (Fernet, under a key derived from SECRET_KEY for this purpose only):
a copy of the database alone does not give anyone's codes. A code is accepted once: the last time
step used is kept and an older or equal one is refused. Recovery codes are kept as keyed hashes and
shown once. Checking a code at sign-in is `community.signin` (wrong codes count toward the lock-out);
this module knows the codes, the enrolment and the rule. Every enrolment, disabling, reset and
recovery-code use is audited; a secret or code never is.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.orm import Session

from community import pii, queries
from community.models import RecoveryCode, Region, RegionSecurity, RoleGrant, User
from core import audit
from core.bounds import is_ascii_digits
from core.db import db, unit_of_work
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.security import authorize, covers, derived_key, keyed_digest

ISSUER = "志愿积分"
DIGITS = 6
INTERVAL = 30
# Steps either side of now a code may come from (a phone's clock a little off).
DRIFT = 1
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_RECOVERY_LENGTH = 10


def _fernet() -> Fernet:
    return Fernet(base64.urlsafe_b64encode(derived_key("totp-secret")))


def _seal(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def _unseal(sealed: str) -> str:
    try:
        return _fernet().decrypt(sealed.encode()).decode()
    except InvalidToken as exc:
        # SECRET_KEY changed since enrolment: an admin resets the person's second factor.
        raise Conflict("otp_unreadable") from exc


def _step(now: datetime) -> int:
    return int(now.timestamp()) // INTERVAL


def code_at(secret: str, now: datetime) -> str:
    """The code an authenticator shows at `now` (for tests and the demo)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).at(now)


def _matching_step(secret: str, code: str, now: datetime, after: int | None) -> int | None:
    """The time step (within the drift, later than `after`) whose code is `code`, else None."""
    if len(code) != DIGITS or not is_ascii_digits(code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL)
    current = _step(now)
    found = None
    for step in range(current - DRIFT, current + DRIFT + 1):
        # Every step is compared (no early exit), so the time taken says nothing.
        if hmac.compare_digest(totp.generate_otp(step), code) and (after is None or step > after):
            found = step if found is None else found
    return found


def normalize(code: str | None) -> str:
    return "".join((code or "").split()).replace("-", "").lower()[:32]


def _recovery_digest(user_id: int, code: str) -> str:
    return keyed_digest("totp-recovery", f"{user_id}:{code}")


def _new_recovery_codes(session: Session, user: User, now: datetime) -> list[str]:
    """Fresh recovery codes for `user` (the old ones stop working), as the person sees them once."""
    session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [
        "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH)) for _ in range(RECOVERY_CODES)
    ]
    session.add_all(
        RecoveryCode(user_id=user.id, code_hash=_recovery_digest(user.id, code), created_at=now) for code in codes
    )
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def check(session: Session, user: User, code: str | None, now: datetime) -> str | None:
    """Whether `code` is a valid second factor of `user` now: "totp", "recovery", or None.

    Runs inside the caller's unit of work. A TOTP code's step is claimed with a guarded update, a
    recovery code is used up likewise, so two requests with one code cannot both pass.
    """
    if user.totp_secret is None:
        return None
    code = normalize(code)
    if len(code) == DIGITS:
        step = _matching_step(_unseal(user.totp_secret), code, now, user.totp_last_step)
        if step is None:
            return None
        claimed = session.execute(
            sa.update(User)
            .where(User.id == user.id, sa.or_(User.totp_last_step.is_(None), User.totp_last_step < step))
            .values(totp_last_step=step)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed:
            user.totp_last_step = step
        return "totp" if claimed else None
    if len(code) != _RECOVERY_LENGTH or not code.isascii() or not code.isalnum():
        return None
    used = session.execute(
        sa.update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _recovery_digest(user.id, code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not used:
        return None
    audit.record(
        "user.totp.recovery_use",
        "user",
        user.id,
        actor=user,
        after={"recovery_codes_left": recovery_codes_left(user, session=session)},
        region_id=user.region_id,
        now=now,
    )
    return "recovery"


def recovery_codes_left(user: User, *, session: Session | None = None) -> int:
    session = session or db.session
    return session.scalar(
        sa.select(sa.func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )


# Enrolment ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolment:
    """What the person copies into their authenticator: the secret and the otpauth URI (the QR)."""

    secret: str
    uri: str


def _enrolment(user: User, secret: str) -> Enrolment:
    label = pii.mask_phone(user.phone) or str(user.id)
    uri = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).provisioning_uri(name=label, issuer_name=ISSUER)
    return Enrolment(secret, uri)


def start(user: User, now: datetime) -> Enrolment:
    """A new secret to enrol (replacing one not yet confirmed); 409 while a second factor is on."""
    with unit_of_work() as session:
        user = session.get(User, user.id, with_for_update=True, populate_existing=True)
        if user.totp_secret is not None:
            raise Conflict("otp_already_enabled")
        secret = pyotp.random_base32()
        user.totp_pending = _seal(secret)
    return _enrolment(user, secret)


def pending(user: User) -> Enrolment | None:
    """The enrolment begun and not yet confirmed, if any (the page shows its QR again)."""
    if user.totp_pending is None or user.totp_secret is not None:
        return None
    try:
        return _enrolment(user, _unseal(user.totp_pending))
    except Conflict:
        return None


def confirm(user: User, code: str, now: datetime) -> list[str]:
    """Finish enrolment with a code from the new secret; returns the recovery codes (shown once)."""
    with unit_of_work() as session:
        user = session.get(User, user.id, with_for_update=True, populate_existing=True)
        if user.totp_secret is not None:
            raise Conflict("otp_already_enabled")
        if user.totp_pending is None:
            raise Conflict("otp_not_started")
        step = _matching_step(_unseal(user.totp_pending), normalize(code), now, None)
        if step is None:
            raise Invalid("otp_invalid", errors={"code": ["验证码不正确，请输入验证器中当前显示的 6 位数字"]})
        user.totp_secret, user.totp_pending = user.totp_pending, None
        user.totp_enabled_at, user.totp_last_step = now, step
        codes = _new_recovery_codes(session, user, now)
        audit.record(
            "user.totp.enrol",
            "user",
            user.id,
            actor=user,
            after={"totp_enabled_at": now, "recovery_codes": len(codes)},
            region_id=user.region_id,
            now=now,
        )
    return codes


def _clear(session: Session, user: User) -> None:
    user.totp_secret = user.totp_pending = user.totp_enabled_at = user.totp_last_step = None
    session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


def disable(user: User, now: datetime, *, sign_out_if_required: bool = False) -> User:
    """Turn one's own second factor off; the caller has checked a current code (`signin.confirm_code`).
    With `sign_out_if_required`, an admin whose region requires it is signed out everywhere, to
    enrol again at the next sign-in (the pages instead send the session straight to enrolment)."""
    with unit_of_work() as session:
        user = session.get(User, user.id, with_for_update=True, populate_existing=True)
        if user.totp_secret is None:
            raise Conflict("otp_not_enabled")
        before = {"totp_enabled_at": user.totp_enabled_at}
        _clear(session, user)
        if sign_out_if_required and required_for(user, session=session):
            user.token_version += 1
        audit.record("user.totp.disable", "user", user.id, actor=user, before=before, region_id=user.region_id, now=now)
    return user


def regenerate(user: User, now: datetime) -> list[str]:
    """New recovery codes (the old ones stop working); the caller has checked a current code."""
    with unit_of_work() as session:
        user = session.get(User, user.id, with_for_update=True, populate_existing=True)
        if user.totp_secret is None:
            raise Conflict("otp_not_enabled")
        codes = _new_recovery_codes(session, user, now)
        audit.record(
            "user.totp.recovery_regenerate",
            "user",
            user.id,
            actor=user,
            after={"recovery_codes": len(codes)},
            region_id=user.region_id,
            now=now,
        )
    return codes


def reset(*, actor: User | None, user_id: int, now: datetime) -> User:
    """An admin who outranks the person turns their second factor off (a lost phone and no
    recovery code): they sign in with the password and enrol again. Never one's own. Without an
    actor, the server's operator (`flask admin totp-reset`, for a top admin nobody outranks)."""
    from community import users

    with unit_of_work() as session:
        if actor is None:
            user = session.get(User, user_id, with_for_update=True, populate_existing=True)
            if user is None:
                raise NotFound("user_not_found")
        else:
            user = users.manageable(session, actor, user_id)
        if user.totp_secret is None and user.totp_pending is None:
            raise Conflict("otp_not_enabled")
        before = {"totp_enabled_at": user.totp_enabled_at}
        _clear(session, user)
        audit.record("user.totp.reset", "user", user.id, actor=actor, before=before, region_id=user.region_id, now=now)
    return user


# The region rule -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """Whether admins in a region must use TOTP, the region that says so (None: the default), and
    the region's own setting (None: inherited)."""

    region: Region
    required: bool
    source: Region | None
    own: bool | None


def _settings(session: Session, region_ids: set[int]) -> dict[int, bool]:
    if not region_ids:
        return {}
    rows = session.execute(
        sa.select(RegionSecurity.region_id, RegionSecurity.admin_totp_required).where(
            RegionSecurity.region_id.in_(region_ids)
        )
    )
    return dict(rows.all())


def _nearest(region: Region, settings: dict[int, bool], *, above: bool = False) -> tuple[bool, int | None]:
    ids = region.ancestor_ids[:-1] if above else region.ancestor_ids
    for region_id in reversed(ids):
        if region_id in settings:
            return settings[region_id], region_id
    return False, None


def rule_for(region: Region, *, session: Session | None = None) -> Rule:
    session = session or db.session
    settings = _settings(session, set(region.ancestor_ids))
    required, source_id = _nearest(region, settings)
    source = session.get(Region, source_id) if source_id is not None else None
    return Rule(region, required, source, settings.get(region.id))


def required_for(user: User, *, session: Session | None = None) -> bool:
    """Whether `user` must use TOTP: they are an admin of a region whose rule requires it."""
    session = session or db.session
    admin_ids = {g.scope_id for g in user.grants if g.role == "admin" and g.scope_type == "region"}
    if not admin_ids:
        return False
    regions = session.scalars(sa.select(Region).where(Region.id.in_(admin_ids))).all()
    settings = _settings(session, {rid for region in regions for rid in region.ancestor_ids})
    return any(_nearest(region, settings)[0] for region in regions)


def rules_within(roots: list[Region]) -> list[Rule]:
    """The rule in force at each root and at every region below with a setting of its own."""
    session = db.session
    own = session.scalars(
        sa.select(Region)
        .join(RegionSecurity, RegionSecurity.region_id == Region.id)
        .where(queries.within(roots))
        .order_by(Region.path)
    ).all()
    shown = {region.id: region for region in [*roots, *own]}
    return [rule_for(region, session=session) for region in sorted(shown.values(), key=lambda r: r.path)]


def set_rule(*, actor: User, region_code: str, required: bool | None, now: datetime) -> Rule:
    """Set (True/False) or clear (None: inherit) a region's rule. A requirement set above the
    region can be relaxed only by an admin over the region that set it. Turning it on signs out
    the admins it now binds who have not enrolled, so that they enrol at their next sign-in."""
    authorize(actor, "admin")
    with unit_of_work() as session:
        region = session.scalar(sa.select(Region).where(Region.code == region_code))
        if region is None:
            raise NotFound("region_not_found")
        authorize(actor, "admin", region, hide=True)
        current = rule_for(region, session=session)
        row = session.get(RegionSecurity, region.id)
        if required is None:
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(
                RegionSecurity(
                    region_id=region.id, admin_totp_required=required, updated_at=now, updated_by_id=actor.id
                )
            )
        else:
            row.admin_totp_required, row.updated_at, row.updated_by_id = required, now, actor.id
        session.flush()
        after = rule_for(region, session=session)
        if current.required and not after.required and not covers(actor, "admin", current.source):
            raise Forbidden("otp_rule_above")
        signed_out = _sign_out_unenrolled(session, region, actor) if after.required and not current.required else 0
        audit.record(
            "region_security.set",
            "region",
            region.id,
            actor=actor,
            before={"admin_totp_required": current.own},
            after={"admin_totp_required": required, "signed_out": signed_out},
            region_id=region.id,
            now=now,
        )
    return after


def _sign_out_unenrolled(session: Session, region: Region, actor: User) -> int:
    """End the sessions and tokens of the admins in `region`'s subtree without TOTP whom the rule
    now binds (not the actor's: they are sent to enrol on their next page)."""
    candidates = session.scalars(
        sa.select(User)
        .join(RoleGrant, RoleGrant.user_id == User.id)
        .where(
            RoleGrant.role == "admin",
            RoleGrant.scope_type == "region",
            RoleGrant.scope_id.in_(queries.region_ids_under([region])),
            User.totp_secret.is_(None),
            User.id != actor.id,
        )
        .distinct()
    ).all()
    bound = [user for user in candidates if required_for(user, session=session)]
    for user in bound:
        user.token_version += 1
    return len(bound)
