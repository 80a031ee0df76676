"""Separation of duties: the one rule that nobody moves points or goods to themselves.

Whoever records, approves, adjusts, corrects or redeems is never the person who gains by it, nor a
member of that person's household (DESIGN §8: the recorder and the approver are never the same
person; the approver is never the beneficiary). Every service that moves points or goods to a
person asks `require_not_beneficiary` before it writes; it never decides anything else.
"""

from __future__ import annotations

from typing import Any

from core.errors import Forbidden

# Who is the second person for deeds, make-ups and objections in their region.
REVIEWERS = ("reviewer", "admin")


def is_beneficiary(actor: Any, beneficiary: Any) -> bool:
    """True when `actor` is the beneficiary or shares a household with them."""
    if actor is None or beneficiary is None:
        return False
    if actor.id == beneficiary.id:
        return True
    household = getattr(actor, "household_id", None)
    return household is not None and household == getattr(beneficiary, "household_id", None)


def require_not_beneficiary(actor: Any, beneficiary: Any) -> None:
    """Refuse (403 `self_dealing`) when `actor` would act for themselves or their household."""
    if is_beneficiary(actor, beneficiary):
        raise Forbidden("self_dealing")


def require_distinct(first_id: int | None, second_id: int | None) -> None:
    """Refuse (403 `same_person`) when the second person of a four-eyes step is the first."""
    if first_id is not None and first_id == second_id:
        raise Forbidden("same_person")
