"""Read side of people and places that the API and the pages share: regions, departments, role
grants and people inside an admin's scope.

Scope is a list of root regions (`services.admin_regions`): everything in their subtrees. Nothing
here writes or authorizes; the caller has already decided who may see what.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from community import services
from community.models import Department, Region, RoleGrant, User
from core.bounds import is_ascii_digits
from core.db import db

LEAF_LEVELS = ("village", "community", "grid")
# At most this many choices in a form's list of regions or departments.
CHOICES = 1000


def within(roots: Sequence[Region]) -> sa.ColumnElement[bool]:
    """A filter on `Region`: inside any of these subtrees (roots included); none at all without roots."""
    return sa.or_(*[services.subtree(root) for root in roots]) if roots else sa.false()


def region_ids_under(roots: Sequence[Region]) -> sa.Select:
    """The ids of every region inside these subtrees: the scope of an admin, reviewer or grid worker."""
    return sa.select(Region.id).where(within(roots))


def region_tree(roots: Sequence[Region]) -> sa.Select:
    """The regions inside these subtrees, in tree order (a parent before its children): a list to page."""
    return sa.select(Region).where(within(roots)).order_by(Region.path)


def regions_within(roots: Sequence[Region], *, limit: int = CHOICES) -> list[Region]:
    """The regions inside these subtrees, in tree order: the choices of a form (at most `limit`)."""
    return list(db.session.scalars(region_tree(roots).limit(limit)))


def region_choices(roots: Sequence[Region], *, limit: int = CHOICES) -> list[Region]:
    """The regions an admin picks on a page (to narrow a list, or to set something for), in tree
    order: every one inside these subtrees but the grids, which follow their village."""
    return list(db.session.scalars(region_tree(roots).where(Region.level != "grid").limit(limit)))


def leaf_regions() -> list[Region]:
    """The regions a resident registers in (villages, communities, grids), in tree order."""
    return list(db.session.scalars(sa.select(Region).where(Region.level.in_(LEAF_LEVELS)).order_by(Region.path)))


def region_search(
    *, parent_code: str | None = None, within_code: str | None = None, level: str | None = None, text: str | None = None
) -> sa.Select:
    """Regions in tree order, filtered by parent, subtree, level and part of the name. An unknown
    parent or subtree code matches nothing."""
    select = sa.select(Region).order_by(Region.path)
    if parent_code is not None:
        parent = services.region_by_code(parent_code)
        select = select.where(Region.parent_id == (parent.id if parent else -1))
    if within_code is not None:
        root = services.region_by_code(within_code)
        select = select.where(services.subtree(root) if root else sa.false())
    if level is not None:
        select = select.where(Region.level == level)
    if text:
        select = select.where(Region.name.contains(text, autoescape=True))
    return select


def residents_per_region(regions: Sequence[Region]) -> dict[int, int]:
    """How many users are registered in each of these regions (absent: none)."""
    rows = db.session.execute(
        sa.select(User.region_id, sa.func.count())
        .where(User.region_id.in_([region.id for region in regions]))
        .group_by(User.region_id)
    ).all()
    return {region_id: n for region_id, n in rows}


def department_search(*, region_code: str | None = None, text: str | None = None) -> sa.Select:
    """Departments in tree order of their region, filtered by a region's subtree and part of the name."""
    select = sa.select(Department).join(Department.region).order_by(Region.path, Department.id)
    if region_code is not None:
        root = services.region_by_code(region_code)
        select = select.where(services.subtree(root) if root else sa.false())
    if text:
        select = select.where(Department.name.contains(text, autoescape=True))
    return select


def department_tree(roots: Sequence[Region]) -> sa.Select:
    """The departments of regions inside these subtrees, in tree order, then by name: a list to page."""
    return sa.select(Department).join(Department.region).where(within(roots)).order_by(Region.path, Department.name)


def departments_within(roots: Sequence[Region], *, limit: int = CHOICES) -> list[Department]:
    """The departments of regions inside these subtrees, in tree order, then by name: a form's choices."""
    return list(db.session.scalars(department_tree(roots).limit(limit)))


def grants_within(roots: Sequence[Region], *, user_id: int | None = None) -> sa.Select:
    """Role grants scoped to a region or a department inside these subtrees, oldest first; only
    `user_id`'s when given. (Store grants belong to the store's staff pages.)"""
    region_ids = region_ids_under(roots)
    department_ids = sa.select(Department.id).where(Department.region_id.in_(region_ids))
    select = (
        sa.select(RoleGrant)
        .where(
            sa.or_(
                sa.and_(RoleGrant.scope_type == "region", RoleGrant.scope_id.in_(region_ids)),
                sa.and_(RoleGrant.scope_type == "department", RoleGrant.scope_id.in_(department_ids)),
            )
        )
        .order_by(RoleGrant.id)
    )
    return select if user_id is None else select.where(RoleGrant.user_id == user_id)


def find_people(roots: Sequence[Region], text: str, *, limit: int = 20) -> list[User]:
    """People registered inside these subtrees whose name or phone contains `text`, or whose
    volunteer number is `text`; oldest accounts first."""
    return list(
        db.session.scalars(
            sa.select(User)
            .join(User.region)
            .where(
                within(roots),
                sa.or_(
                    User.name.contains(text, autoescape=True),
                    User.phone.contains(text, autoescape=True),
                    User.volunteer_no == text,
                ),
            )
            .order_by(User.id)
            .limit(limit)
        )
    )


def people_within(roots: Sequence[Region], *, text: str | None = None, active: bool | None = None) -> sa.Select:
    """People registered inside these subtrees (an admin's user list), by name, then id, so that a
    page keeps its order; found by name, the last 4 digits of their phone (the whole number also
    finds them) or volunteer number; only active (or only deactivated) accounts when `active` is given."""
    select = (
        sa.select(User)
        .join(User.region)
        .where(within(roots))
        .options(joinedload(User.region), selectinload(User.grants))
        .order_by(User.name, User.id)
    )
    if active is not None:
        select = select.where(User.active.is_(active))
    text = (text or "").strip()
    return select.where(_matching(text)) if text else select


def _matching(text: str) -> sa.ColumnElement[bool]:
    if is_ascii_digits(text):
        found = [User.volunteer_no == f"ZY{text.zfill(8)}"] if len(text) <= 8 else []
        if len(text) == 4:
            found.append(User.phone.endswith(text, autoescape=True))
        if len(text) == 11:
            found.append(User.phone == text)
        return sa.or_(*found) if found else sa.false()
    return sa.or_(User.name.contains(text, autoescape=True), User.volunteer_no == text.upper())


def user_by_phone(phone: str) -> User | None:
    """The account registered with this phone number, if any."""
    return db.session.scalar(sa.select(User).where(User.phone == phone))
