"""Pages of a list for the web pages: the same `Page` (items, page, per_page, total) the API lists
give, read from `?page=` of a page's URL. A page number that is not a plain ASCII number, or lies
past the end, shows the first or the last page instead of an error: people follow links and edit
URLs, and a list is never worth a 4xx. Nothing here knows a domain.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from core.api import Page, paginate
from core.bounds import INT_MAX, parse_int

PER_PAGE = 20


def page_of(select: Any, args: Mapping[str, str], session: Any, *, per_page: int = PER_PAGE) -> Page:
    """One page of `select` for a web page, the number taken from `args["page"]` (default 1)."""
    try:
        number = parse_int(args.get("page") or "1", minimum=1, maximum=INT_MAX)
    except ValueError:
        number = 1
    page = paginate(select, {"page": number, "per_page": per_page}, session)
    last = pages(page)
    if page.page > last:
        page = paginate(select, {"page": last, "per_page": per_page}, session)
    return page


def pages(page: Page) -> int:
    """How many pages the list has (at least one, even when it is empty)."""
    return max(1, math.ceil(page.total / page.per_page))
