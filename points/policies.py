"""Looking up the rules and policies that apply to a region: point rules (most specific wins,
newest version of each), notice days and expiry settings."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from community.models import Region, User
from core import audit
from core.db import unit_of_work
from core.security import authorize
from points.models import PointRule, RegionPolicy
from points.rules import Rule

RULE_FIELDS = (
    "unit_minutes",
    "minimum_minutes",
    "daily_cap_minutes",
    "points_per_hour",
    "grace_before_minutes",
    "grace_after_minutes",
)


def rule_for(
    session: Session, region: Region | None, category: str | None, override: dict[str, int] | None = None
) -> Rule:
    """The rule for an activity: the nearest region (itself, then its ancestors, then global) with
    a rule for this category, else for any category; the newest version; then activity overrides."""
    ancestors = list(reversed(region.ancestor_ids)) if region else []
    candidates = session.scalars(
        sa.select(PointRule)
        .where(sa.or_(PointRule.region_id.in_(ancestors), PointRule.region_id.is_(None)))
        .order_by(PointRule.id.desc())
    ).all()

    def rank(rule: PointRule) -> tuple[int, int]:
        depth = ancestors.index(rule.region_id) if rule.region_id in ancestors else len(ancestors)
        return depth, 0 if rule.category == category else 1

    usable = [r for r in candidates if r.category in (None, category)]
    chosen = min(usable, key=lambda r: (*rank(r), -r.id)) if usable else None
    values = {f: getattr(chosen, f) for f in RULE_FIELDS} if chosen else {}
    values.update({k: v for k, v in (override or {}).items() if k in RULE_FIELDS and v is not None})
    return Rule(**values, version=chosen.id if chosen else 0)


def set_rule(
    *, actor: User | None, region: Region | None, category: str | None, now: datetime, **values: int
) -> PointRule:
    """A new version of the rule for (region, category); older entries keep the version they used."""
    with unit_of_work() as session:
        if actor is not None:
            authorize(actor, "admin", region) if region else authorize(actor, "admin", _NoScope())
        Rule(**{k: v for k, v in values.items() if k in RULE_FIELDS})  # validates
        row = PointRule(
            region_id=region.id if region else None,
            category=category,
            created_by_id=getattr(actor, "id", None),
            created_at=now,
            **{k: v for k, v in values.items() if k in RULE_FIELDS},
        )
        session.add(row)
        session.flush()
        audit.record(
            "point_rule.create",
            "point_rule",
            row.id,
            actor=actor,
            after={"category": category, **values},
            region_id=region.id if region else None,
            now=now,
        )
    return row


class _NoScope:
    def scope_keys(self) -> set[tuple[str, int]]:
        return set()


def policy_for(session: Session, region: Region) -> RegionPolicy:
    """The nearest region's policy (a village inherits its county's), or the defaults."""
    ancestors = list(reversed(region.ancestor_ids))
    rows = {
        p.region_id: p for p in session.scalars(sa.select(RegionPolicy).where(RegionPolicy.region_id.in_(ancestors)))
    }
    for region_id in ancestors:
        if region_id in rows:
            return rows[region_id]
    return RegionPolicy(region_id=region.id, notice_days=3, expiry="none", settlement_month=1, settlement_day=1)


def set_policy(*, actor: User | None, region: Region, now: datetime, **values) -> RegionPolicy:
    with unit_of_work() as session:
        if actor is not None:
            authorize(actor, "admin", region)
        row = session.get(RegionPolicy, region.id) or RegionPolicy(region_id=region.id)
        before = {k: getattr(row, k) for k in ("notice_days", "expiry", "settlement_month", "settlement_day")}
        for key, value in values.items():
            setattr(row, key, value)
        session.add(row)
        audit.record(
            "region_policy.set",
            "region",
            region.id,
            actor=actor,
            before=before,
            after=values,
            region_id=region.id,
            now=now,
        )
    return row
