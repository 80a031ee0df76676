"""Regions, departments, households and role grants: every write, with its scope check and audit.

Services authorize their actor themselves, so that the page, the API and the CLI can never
disagree about who may do what. `actor=None` is the system (CLI, seed), trusted by construction.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from community.messages import MESSAGES
from community.models import (
    LEVEL_RANK,
    ROLE_SCOPES,
    ROLES,
    ROOT_LEVELS,
    SCOPE_TYPES,
    Department,
    Region,
    RoleGrant,
    User,
)
from core import audit
from core.bounds import INT_MAX, parse_int
from core.db import db, unit_of_work
from core.errors import Conflict, Invalid, NotFound
from core.security import ScopeTarget, authorize


def _unique(code: str) -> Callable:
    """Turn a lost race on a unique index into the same Conflict the pre-check would have raised."""

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except IntegrityError as exc:
                raise Conflict(code) from exc

        return wrapper

    return decorate


REGION_CODE = re.compile(r"^[0-9A-Za-z_-]{2,32}$")

# Other domains register how to find the target of a scope they own (exchange: "store").
_SCOPE_RESOLVERS: dict[str, Callable[[Session, int], ScopeTarget | None]] = {}


def register_scope_resolver(scope_type: str, resolver: Callable[[Session, int], ScopeTarget | None]) -> None:
    _SCOPE_RESOLVERS[scope_type] = resolver


def region_by_code(code: str | None, *, session: Session | None = None) -> Region | None:
    if not code:
        return None
    return (session or db.session).scalar(sa.select(Region).where(Region.code == code))


def require_region(code: str, field: str = "region_code") -> Region:
    region = region_by_code(code)
    if region is None:
        raise Invalid("region_not_found", errors={field: [MESSAGES["region_not_found"]]})
    return region


def subtree(region: Region) -> sa.ColumnElement[bool]:
    """A filter for every region in `region`'s subtree (itself included): one prefix match."""
    return Region.path.startswith(region.path, autoescape=True)


def region_ids_in(region: Region) -> sa.Select:
    return sa.select(Region.id).where(subtree(region))


@_unique("region_code_taken")
def create_region(
    *, actor: User | None, code: str, name: str, level: str, parent_code: str | None, now: datetime
) -> Region:
    errors: dict[str, list[str]] = {}
    code, name = code.strip(), name.strip()
    if not REGION_CODE.match(code):
        errors["code"] = ["编码为 2–32 位字母、数字、下划线或连字符"]
    if not name or len(name) > 64:
        errors["name"] = ["请填写名称（不超过 64 字）"]
    if level not in LEVEL_RANK:
        errors["level"] = ["层级须为 " + "、".join(LEVEL_RANK)]
    if errors:
        raise Invalid(errors=errors)
    with unit_of_work() as session:
        parent = None
        if parent_code:
            parent = region_by_code(parent_code, session=session)
            if parent is None:
                raise Invalid("region_not_found", errors={"parent_code": [MESSAGES["region_not_found"]]})
        if actor is not None:
            # Only an admin over the parent may add below it; a new root is the system's (CLI).
            if parent is None:
                authorize(actor, "admin", _Nowhere())
            authorize(actor, "admin", parent)
        if parent is None and level not in ROOT_LEVELS:
            raise Invalid("region_level_invalid", errors={"level": ["顶级地区须为省、市或县/区"]})
        if parent is not None and LEVEL_RANK[level] <= LEVEL_RANK[parent.level]:
            raise Invalid("region_level_invalid", errors={"level": [MESSAGES["region_level_invalid"]]})
        if region_by_code(code, session=session) is not None:
            raise Conflict("region_code_taken")
        region = Region(
            code=code,
            name=name,
            level=level,
            parent=parent,
            path="/",
            depth=(parent.depth + 1) if parent else 0,
            created_at=now,
        )
        session.add(region)
        session.flush()
        region.path = f"{parent.path if parent else '/'}{region.id}/"
        audit.record(
            "region.create",
            "region",
            region.id,
            actor=actor,
            after={"code": code, "name": name, "level": level, "parent_code": parent_code},
            region_id=region.id,
            now=now,
        )
    return region


class _Nowhere:
    """A target no grant covers (for acts reserved to the system)."""

    def scope_keys(self) -> set[tuple[str, int]]:
        return set()


@_unique("department_taken")
def create_department(*, actor: User | None, name: str, region_code: str, now: datetime) -> Department:
    name = name.strip()
    if not name or len(name) > 64:
        raise Invalid(errors={"name": ["请填写部门名称（不超过 64 字）"]})
    with unit_of_work() as session:
        region = require_region(region_code)
        if actor is not None:
            authorize(actor, "admin", region)
        exists = session.scalar(
            sa.select(Department.id).where(Department.region_id == region.id, Department.name == name)
        )
        if exists:
            raise Conflict("department_taken")
        department = Department(name=name, region=region, created_at=now)
        session.add(department)
        session.flush()
        audit.record(
            "department.create",
            "department",
            department.id,
            actor=actor,
            after={"name": name, "region_code": region.code},
            region_id=region.id,
            now=now,
        )
    return department


def resolve_scope(scope_type: str, scope_id: str | int, *, session: Session | None = None) -> ScopeTarget | None:
    """The region (by code), department or store (by id) a grant would cover."""
    session = session or db.session
    if scope_type == "region":
        return region_by_code(str(scope_id), session=session)
    try:
        ident = scope_id if type(scope_id) is int else parse_int(str(scope_id), minimum=1)
    except (TypeError, ValueError):
        return None
    if not 1 <= ident <= INT_MAX:
        return None
    if scope_type == "department":
        return session.get(Department, ident)
    resolver = _SCOPE_RESOLVERS.get(scope_type)
    return resolver(session, ident) if resolver else None


@_unique("role_exists")
def grant_role(
    *, actor: User | None, user_id: int, role: str, scope_type: str, scope_id: str | int, now: datetime
) -> RoleGrant:
    errors: dict[str, list[str]] = {}
    if role not in ROLES:
        errors["role"] = ["角色须为 " + "、".join(ROLES)]
    if scope_type not in SCOPE_TYPES:
        errors["scope_type"] = ["范围须为 region、department 或 store"]
    if errors:
        raise Invalid(errors=errors)
    if scope_type not in ROLE_SCOPES[role]:
        raise Invalid(
            "role_scope_invalid", errors={"scope_type": [f"{role} 只能按 {'、'.join(ROLE_SCOPES[role])} 授权"]}
        )
    with unit_of_work() as session:
        target = resolve_scope(scope_type, scope_id, session=session)
        if target is None:
            raise Invalid("scope_not_found", errors={"scope_id": [MESSAGES["scope_not_found"]]})
        if actor is not None:
            authorize(actor, "admin", target)
        user = session.get(User, user_id)
        if user is None:
            raise Invalid("not_found", errors={"user_id": ["找不到该用户"]})
        internal_id = target.id  # a region grant is kept by id; the API shows its code
        exists = session.scalar(
            sa.select(RoleGrant).where(
                RoleGrant.user_id == user.id,
                RoleGrant.role == role,
                RoleGrant.scope_type == scope_type,
                RoleGrant.scope_id == internal_id,
            )
        )
        if exists is not None:
            raise Conflict("role_exists")
        grant = RoleGrant(
            user=user,
            role=role,
            scope_type=scope_type,
            scope_id=internal_id,
            granted_by_id=actor.id if actor else None,
            created_at=now,
        )
        session.add(grant)
        session.flush()
        audit.record(
            "role.grant",
            "role_grant",
            grant.id,
            actor=actor,
            after={"user_id": user.id, "role": role, "scope_type": scope_type, "scope_id": str(scope_id)},
            region_id=_region_id_of(target),
            now=now,
        )
        if role == "admin" and user.totp_secret is None:
            from community import totp  # the second-factor rule reads these tables

            if totp.required_for(user, session=session):
                user.token_version += 1  # signed out: they enrol at their next sign-in
    return grant


def revoke_role(*, actor: User | None, grant_id: int, now: datetime) -> None:
    """Remove a grant; every token and session its holder signed in with ends, so a device signed
    in for the role (a shop counter, a kiosk) stops at once and the person signs in afresh."""
    with unit_of_work() as session:
        grant = session.get(RoleGrant, grant_id)
        if grant is None:
            raise NotFound()
        target = resolve_scope(grant.scope_type, scope_label(grant, session=session), session=session)
        if actor is not None:
            authorize(actor, "admin", target or _Nowhere(), hide=True)
        before = {
            "user_id": grant.user_id,
            "role": grant.role,
            "scope_type": grant.scope_type,
            "scope_id": grant.scope_id,
        }
        session.delete(grant)
        holder = session.get(User, grant.user_id, with_for_update=True)
        if holder is not None:
            holder.token_version += 1  # the holder's tokens, sessions and personal codes end with the role
        audit.record(
            "role.revoke",
            "role_grant",
            grant_id,
            actor=actor,
            before=before,
            region_id=_region_id_of(target) if target else None,
            now=now,
        )


def scope_label(grant: RoleGrant, *, session: Session | None = None) -> str | int:
    """A grant's scope as the API names it: a region's code, else the department or store id."""
    if grant.scope_type == "region":
        region = (session or db.session).get(Region, grant.scope_id)
        return region.code if region else str(grant.scope_id)
    return grant.scope_id


def _region_id_of(target: ScopeTarget) -> int | None:
    region_keys = sorted(k[1] for k in target.scope_keys() if k[0] == "region")
    return region_keys[-1] if region_keys else None


def admin_regions(user: User, roles: tuple[str, ...] = ("admin", "reviewer")) -> list[Region]:
    """The roots of the subtrees `user` holds one of `roles` over."""
    ids = {g.scope_id for g in user.grants if g.scope_type == "region" and g.role in roles}
    if not ids:
        return []
    return list(db.session.scalars(sa.select(Region).where(Region.id.in_(ids)).order_by(Region.path)))


def root_level_of(code: str) -> str:
    """The level a root's code implies: a national 6-digit code (GB/T 2260) ending in 0000 is a
    province, in 00 a city, any other a county; a code of another shape is taken for a county."""
    if len(code) == 6 and code.isascii() and code.isdigit():
        if code.endswith("0000"):
            return "province"
        if code.endswith("00"):
            return "city"
    return "county"


def admin_roots(actor: User, region_code: str | None = None) -> list[Region]:
    """The roots an admin's list covers (filter with `community.queries.within`): `region_code`'s
    region, which they must administer (403 otherwise; 422 for an unknown code), else every region
    they administer."""
    authorize(actor, "admin")
    if region_code:
        region = require_region(region_code)
        authorize(actor, "admin", region)
        return [region]
    return admin_regions(actor, roles=("admin",))


def ensure_admin(
    *,
    phone: str,
    password: str,
    name: str,
    region_code: str,
    region_name: str,
    now: datetime,
    level: str | None = None,
) -> tuple[User, bool]:
    """The CLI's `admin create`: a root region if missing and an admin over it. Idempotent.

    The root's level is `level`, or the one its code implies (`root_level_of`)."""
    from community import accounts

    region_code = region_code.strip()
    region = region_by_code(region_code)
    if region is None:
        region = create_region(
            actor=None,
            code=region_code,
            name=region_name,
            level=level or root_level_of(region_code),
            parent_code=None,
            now=now,
        )
    elif level and region.level != level:
        raise Conflict("region_level_invalid", f"地区 {region_code} 已存在，层级为{region.level_name}")
    user = db.session.scalar(sa.select(User).where(User.phone == phone))
    created = False
    if user is None:
        user = accounts.register(phone=phone, name=name, password=password, region_code=region.code, now=now)
        created = True
    if ("region", region.id) not in user.grant_keys("admin"):
        grant_role(actor=None, user_id=user.id, role="admin", scope_type="region", scope_id=region.code, now=now)
    return user, created
