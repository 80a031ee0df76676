"""Who may read which figures: admins and reviewers, over their own regions' subtrees.

A region asked for by code must lie inside one of the caller's regions; one outside is answered as
if it did not exist (404), as the house does for objects a caller may not even learn of. Without a
code, the caller's widest region is meant. The same check serves the API, the pages and exports.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from community import services as community_services
from community.models import Region, User
from core import clock
from core.errors import NotFound
from core.security import authorize

READERS = ("admin", "reviewer")


def region_for(user: User | None, region_code: str | None) -> Region:
    authorize(user, READERS)
    if region_code:
        region = community_services.region_by_code(region_code)
        if region is None:
            raise NotFound("region_not_found")
        authorize(user, READERS, region, hide=True)
        return region
    roots = community_services.admin_regions(user, READERS)
    return min(roots, key=lambda r: (r.depth, r.code))


def roots_of(user: User) -> list[Region]:
    return community_services.admin_regions(user, READERS)


def period(query: dict[str, Any], today: date | None = None) -> tuple[date, date]:
    """The period asked for; by default from the first of January to today (local days). A start
    after today without an end is a period of that one day."""
    today = today or clock.today()
    first = query.get("from_")
    last = query.get("to") or max(today, first or today)
    return first or date(last.year, 1, 1), last
