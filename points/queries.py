"""Read side of points that the API and the pages share: the residents an admin or reviewer may
read, deeds and adjustments inside a scope, balances of a list of people, the regions whose point
rules an admin reads.

Reads only: no writes, no rules. Balances come from `points.ledger`, the one owner of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from community import queries as community_queries
from community import services as community_services
from community.models import Household, Region, User
from core.db import db
from core.errors import NotFound
from core.security import authorize, covers
from points import archive, ledger
from points.models import Adjustment, ArchiveEntry, Deed

READERS = ("admin", "reviewer")


def resident_in_scope(viewer: User, resident_id: int) -> User:
    """A resident whose archive `viewer` may read: an admin or reviewer of the resident's region.
    Whether the resident is missing or outside the viewer's regions, the answer is the same 404, so
    nobody learns who lives elsewhere; one who reads no archives at all gets 403."""
    authorize(viewer, READERS)
    resident = db.session.get(User, resident_id)
    if resident is None or not covers(viewer, READERS, resident):
        raise NotFound("not_a_resident")
    return resident


def archive_of(resident: User) -> dict:
    """A resident's moral e-archive: totals, every entry in order, and the head of its hash chain."""
    return {
        "resident": resident,
        "totals": archive.totals(db.session, resident.id),
        "entries": archive.entries(db.session, resident.id),
        "head_hash": archive.head_hash(db.session, resident.id),
    }


def proxy_names(entries: Sequence[ArchiveEntry]) -> dict[int, str]:
    """The names of those who acted on the resident's behalf (代办), by the ids the entries keep (an
    entry is hashed for good, so it names them by id; a closed account shows its pseudonym)."""
    ids = {e.details["proxy_by"] for e in entries if isinstance(e.details, dict) and e.details.get("proxy_by")}
    return dict(db.session.execute(sa.select(User.id, User.name).where(User.id.in_(ids))).all()) if ids else {}


def residents_within(roots: Sequence[Region], text: str = "") -> sa.Select:
    """People registered inside these subtrees, oldest accounts first (a list to page); with `text`,
    those whose name contains it, whose volunteer number is it, or whose phone ends with it."""
    select = sa.select(User).join(User.region).where(community_queries.within(roots)).order_by(User.id)
    if text:
        select = select.where(
            sa.or_(
                User.name.contains(text, autoescape=True),
                User.volunteer_no == text,
                User.phone.endswith(text, autoescape=True),
            )
        )
    return select


def residents_by_name(roots: Sequence[Region], *, limit: int = 500) -> list[User]:
    """People registered inside these subtrees, by name: the choice on a grid worker's deed form."""
    return list(
        db.session.scalars(
            sa.select(User).join(User.region).where(community_queries.within(roots)).order_by(User.name).limit(limit)
        )
    )


def balances(people: Sequence[User]) -> dict[int, int]:
    """Each person's points balance, by user id."""
    return {person.id: ledger.balance(db.session, person.id) for person in people}


def household_of(resident: User) -> tuple[Household, list[User]] | None:
    """The resident's household and its members (the resident among them), or None."""
    if not resident.household_id:
        return None
    members = list(
        db.session.scalars(sa.select(User).where(User.household_id == resident.household_id).order_by(User.id))
    )
    return db.session.get(Household, resident.household_id), members


def deeds_within(roots: Sequence[Region], *, status: str | None = None) -> sa.Select:
    """Deeds of residents inside these subtrees, newest first; only those in `status` when given."""
    select = (
        sa.select(Deed).where(Deed.region_id.in_(community_queries.region_ids_under(roots))).order_by(Deed.id.desc())
    )
    return select if status is None else select.where(Deed.status == status)


def deeds_to_review(roots: Sequence[Region]) -> list[Deed]:
    """Deeds inside these subtrees a reviewer still acts on (pending, or approved and on notice),
    oldest first."""
    return list(
        db.session.scalars(
            sa.select(Deed)
            .where(
                Deed.region_id.in_(community_queries.region_ids_under(roots)),
                Deed.status.in_(("pending", "approved")),
            )
            .order_by(Deed.id)
        )
    )


def adjustments_within(admin: User, status: str | None = None) -> sa.Select:
    """Adjustments of residents in the regions `admin` administers, newest first; only those in
    `status` when given (the API pages it; the review page lists it)."""
    authorize(admin, "admin")
    roots = community_services.admin_regions(admin, roles=("admin",))
    select = (
        sa.select(Adjustment)
        .join(User, User.id == Adjustment.resident_id)
        .where(User.region_id.in_(community_queries.region_ids_under(roots)))
        .order_by(Adjustment.id.desc())
    )
    return select.where(Adjustment.status == status) if status else select


def pending_adjustments(admin: User, *, limit: int = 200) -> list[Adjustment]:
    """Adjustments of the admin's residents waiting for a second admin, newest first."""
    return list(db.session.scalars(adjustments_within(admin, "pending").limit(limit)))


def decided_adjustments(admin: User) -> sa.Select:
    """Adjustments of the admin's residents that posted or were refused, newest first (a list to page)."""
    return adjustments_within(admin).where(Adjustment.status != "pending")


def rule_regions(admin: User, region_code: str | None = None) -> sa.Select:
    """The regions whose point rules an admin reads, in tree order: `region_code`'s subtree (which
    must be theirs), else that of every region they administer."""
    return community_queries.region_tree(community_services.admin_roots(admin, region_code))
