"""Accounts: sign-up, passwords, API tokens and the personal code (sign-in is `community.signin`)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from community import codes, pii
from community.messages import MESSAGES
from community.models import Region, User
from core import audit
from core.bounds import parse_int
from core.db import db, unit_of_work
from core.errors import Conflict, Invalid, NotFound
from core.security import authorize, hash_password, issue_api_token, password_problems, verify_password

# Who prints a resident's card: an admin of their region, or the grid worker of their grid.
CARD_ISSUERS = ("admin", "grid_worker")


def snapshot(user: User) -> dict:
    """What the audit log keeps of a person: never the password hash or a full ID number."""
    return {
        "name": user.name,
        "phone": pii.mask_phone(user.phone),
        "region_id": user.region_id,
        "household_id": user.household_id,
        "active": user.active,
        "consent_public_name": user.consent_public_name,
    }


def register(
    *,
    phone: str,
    name: str,
    password: str,
    region_code: str,
    id_number: str | None = None,
    guardian_consent: bool = False,
    consent_public_name: bool = False,
    now: datetime,
    actor: User | None = None,
    password_hash: str | None = None,
) -> User:
    """Create a resident, or let them claim the record an office imported for their phone number
    (`_claim`). `password_hash` lets the demo seed reuse one hash for speed."""
    errors: dict[str, list[str]] = {}
    phone = phone.strip()
    name = name.strip()
    if not pii.PHONE.match(phone):
        errors["phone"] = ["请输入 11 位手机号"]
    if not name or len(name) > 32:
        errors["name"] = ["请填写真实姓名（不超过 32 字）"]
    if password_hash is None and (problems := password_problems(password, phone=phone)):
        errors["password"] = problems
    digest = masked = None
    if id_number:
        id_number = pii.normalize_id_number(id_number)
        if problem := pii.id_number_problem(id_number):
            errors["id_number"] = [problem]
        else:
            born = pii.birth_date(id_number)
            if born and pii.age_on(born, now.date()) < 14 and not guardian_consent:
                errors["guardian_consent"] = [MESSAGES["guardian_consent_required"]]
            digest, masked = pii.id_digest(id_number), pii.mask_id(id_number)
    if errors:
        raise Invalid(errors=errors)

    try:
        return _insert_user(
            phone=phone,
            name=name,
            password=password,
            password_hash=password_hash,
            region_code=region_code,
            digest=digest,
            masked=masked,
            guardian_consent=guardian_consent,
            consent_public_name=consent_public_name,
            now=now,
            actor=actor,
        )
    except IntegrityError as exc:
        # Two sign-ups with one phone at once: the unique index decides, the loser is told plainly.
        raise Conflict("phone_taken") from exc


def _insert_user(
    *,
    phone: str,
    name: str,
    password: str,
    password_hash: str | None,
    region_code: str,
    digest: str | None,
    masked: str | None,
    guardian_consent: bool,
    consent_public_name: bool,
    now: datetime,
    actor: User | None,
) -> User:
    with unit_of_work() as session:
        region = session.scalar(sa.select(Region).where(Region.code == region_code))
        if region is None:
            raise Invalid(errors={"region_code": [MESSAGES["region_not_found"]]})
        existing = session.scalar(
            sa.select(User).where(User.phone == phone).with_for_update().execution_options(populate_existing=True)
        )
        if existing is not None:
            if not existing.claimable:
                raise Conflict("phone_taken")
            return _claim(
                existing,
                name=name,
                password=password,
                password_hash=password_hash,
                digest=digest,
                masked=masked,
                guardian_consent=guardian_consent,
                consent_public_name=consent_public_name,
                now=now,
            )
        if digest and session.scalar(sa.select(User.id).where(User.id_number_digest == digest)):
            raise Conflict("id_number_taken")
        user = User(
            phone=phone,
            name=name,
            password_hash=password_hash or hash_password(password),
            id_number_digest=digest,
            id_number_masked=masked,
            region=region,
            guardian_consent=guardian_consent,
            consent_public_name=consent_public_name,
            created_at=now,
            password_changed_at=now,
        )
        session.add(user)
        session.flush()
        # The volunteer number is the public identifier (never the ID number, DESIGN §8).
        user.volunteer_no = f"ZY{user.id:08d}"
        audit.record(
            "user.register", "user", user.id, actor=actor or user, after=snapshot(user), region_id=region.id, now=now
        )
    return user


def _claim(
    user: User,
    *,
    name: str,
    password: str,
    password_hash: str | None,
    digest: str | None,
    masked: str | None,
    guardian_consent: bool,
    consent_public_name: bool,
    now: datetime,
) -> User:
    """Someone registers with the phone number of a resident a community office imported: the
    record becomes theirs, keeping its grid, household and volunteer number, provided the name
    is the one the office registered (and the ID number too, when both are known). Runs inside
    `_insert_user`'s unit of work, the row locked."""
    if user.name != name:
        raise Conflict("claim_name_mismatch")
    if digest and user.id_number_digest and user.id_number_digest != digest:
        raise Conflict("id_number_mismatch")
    if digest and not user.id_number_digest:
        if db.session.scalar(sa.select(User.id).where(User.id_number_digest == digest)):
            raise Conflict("id_number_taken")
        user.id_number_digest, user.id_number_masked = digest, masked
    before = snapshot(user)
    user.password_hash = password_hash or hash_password(password)
    user.password_changed_at = now
    user.guardian_consent = user.guardian_consent or guardian_consent
    user.consent_public_name = consent_public_name
    audit.record(
        "user.claim",
        "user",
        user.id,
        actor=user,
        before=before,
        after=snapshot(user),
        region_id=user.region_id,
        now=now,
    )
    return user


def change_password(user: User, *, old: str, new: str, now: datetime) -> None:
    """Set a new password; every API token, session and personal code issued before is void."""
    if not verify_password(user.password_hash, old):
        raise Invalid("wrong_password", errors={"old_password": [MESSAGES["wrong_password"]]})
    if problems := password_problems(new, phone=user.phone):
        raise Invalid("weak_password", errors={"new_password": problems})
    with unit_of_work() as session:
        user = session.get(User, user.id, with_for_update=True, populate_existing=True)
        user.password_hash = hash_password(new)
        user.token_version += 1
        user.password_changed_at = now
        audit.record("user.password_changed", "user", user.id, actor=user, region_id=user.region_id, now=now)


def api_token(user: User, now: datetime) -> tuple[str, datetime]:
    return issue_api_token(user.id, user.token_version, now)


def user_for_token(user_id: int, version: int) -> User | None:
    user = db.session.get(User, user_id)
    if user is None or not user.active or user.token_version != version:
        return None
    return user


def user_for_session(session_id: str) -> User | None:
    user_id, _, version = session_id.partition(":")
    try:
        return user_for_token(parse_int(user_id, minimum=1), parse_int(version, minimum=0))
    except ValueError:
        return None


def personal_code(user: User, now: datetime) -> tuple[str, datetime]:
    return codes.issue(user.id, user.token_version, now)


def resolve_personal_code(code: str, now: datetime, *, with_roles: bool = False) -> User:
    """The active user a scanned personal code belongs to (kiosk, counter), or Invalid. With
    `with_roles`, their role grants come in the same statement (the counter flags staff)."""

    found: dict[int, User] = {}
    options = [joinedload(User.grants)] if with_roles else []

    def version_of(user_id: int) -> int | None:
        user = found[user_id] = db.session.get(User, user_id, options=options)
        return user.token_version if user is not None and user.active else None

    return found[codes.verify(code, now, version_of)]


def resolve_code(code: str, now: datetime, *, with_roles: bool = False) -> tuple[User, str]:
    """Whom a scanned code names: a personal code from a phone (`"code"`) or a printed card
    (`"card"`), so that the kiosk and the counter can tell a card, shown on someone's behalf."""
    if codes.is_card(code):
        return resolve_card(code, with_roles=with_roles), "card"
    return resolve_personal_code(code, now, with_roles=with_roles), "code"


def resolve_card(code: str, *, with_roles: bool = False) -> User:
    """The active resident a printed card belongs to, or Invalid ('card_invalid', 'card_revoked')."""
    found: dict[int, User] = {}
    options = [joinedload(User.grants)] if with_roles else []

    def serial_of(user_id: int) -> int | None:
        user = found[user_id] = db.session.get(User, user_id, options=options)
        return user.card_serial if user is not None and user.active else None

    return found[codes.verify_card(code, serial_of)]


def card_code(user: User) -> str | None:
    """What the resident's current card carries (None before the first card)."""
    return codes.card(user.id, user.card_serial) if user.card_serial else None


def card_holder(actor: User, user_id: int) -> User:
    """A resident whose card `actor` may print: an admin of their region or their grid worker
    (403 without either role; 404 for a resident outside the actor's regions, as if unknown)."""
    authorize(actor, CARD_ISSUERS)
    user = db.session.get(User, user_id)
    if user is None or not user.active:
        raise NotFound("user_not_found")
    authorize(actor, CARD_ISSUERS, user, hide=True)
    return user


def issue_card(*, actor: User, user_id: int, now: datetime) -> User:
    """Issue the resident a new card: the first, or one that replaces (and so voids) the old."""
    with unit_of_work() as session:
        card_holder(actor, user_id)
        user = session.get(User, user_id, with_for_update=True, populate_existing=True)
        before = user.card_serial
        user.card_serial = (before or 0) + 1
        audit.record(
            "user.card_issue",
            "user",
            user.id,
            actor=actor,
            before={"card_serial": before},
            after={"card_serial": user.card_serial},
            region_id=user.region_id,
            now=now,
        )
    return user
