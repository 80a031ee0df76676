"""Looking up the rules and policies that apply to a region: point rules (most specific wins,
newest version of each), notice days and expiry settings; and the admin's view and change of them.

A region without a rule or policy of its own inherits its nearest ancestor's (then the built-in
defaults). A change is a new version of the region's rule row: credits already given name the
version they used (`Rule.version`, kept in the archive entry), so the archive explains them after
any later change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from community import services as community_services
from community.models import Region, User
from core import audit
from core.db import db, unit_of_work
from core.errors import Invalid, NotFound
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


POLICY_FIELDS = ("notice_days", "expiry", "settlement_month", "settlement_day")
# The contract's names (API.md "Administration") for the rule's own.
CONTRACT_NAMES = {
    "points_per_hour": "points_per_hour",
    "rounding_minutes": "unit_minutes",
    "minimum_minutes": "minimum_minutes",
    "daily_cap_minutes": "daily_cap_minutes",
}


@dataclass(frozen=True)
class RegionRule:
    """What applies in a region (the rule for every category without one of its own, and the
    policy), and where each comes from: the region itself, an ancestor, or None (built-in)."""

    region: Region
    rule: Rule
    rule_from: Region | None
    policy: RegionPolicy
    policy_from: Region | None

    @property
    def own_rule(self) -> bool:
        return self.rule_from is not None and self.rule_from.id == self.region.id

    @property
    def own_policy(self) -> bool:
        return self.policy_from is not None and self.policy_from.id == self.region.id


def region_rules(session: Session, regions: list[Region]) -> list[RegionRule]:
    """The rule and policy in force in each of `regions`, in three queries whatever their number
    (the same choice as `rule_for(session, region, None)` and `policy_for`)."""
    ids = sorted({rid for region in regions for rid in region.ancestor_ids})
    newest: dict[int | None, PointRule] = {}
    for row in session.scalars(
        sa.select(PointRule)
        .where(PointRule.category.is_(None), sa.or_(PointRule.region_id.in_(ids), PointRule.region_id.is_(None)))
        .order_by(PointRule.id.desc())
    ):
        newest.setdefault(row.region_id, row)
    policies = {p.region_id: p for p in session.scalars(sa.select(RegionPolicy).where(RegionPolicy.region_id.in_(ids)))}
    by_id = {r.id: r for r in session.scalars(sa.select(Region).where(Region.id.in_(ids)))}
    views = []
    for region in regions:
        nearest = list(reversed(region.ancestor_ids))
        rule_region = next((rid for rid in nearest if rid in newest), None)
        chosen = newest.get(rule_region) if rule_region is not None else newest.get(None)
        values = {f: getattr(chosen, f) for f in RULE_FIELDS} if chosen else {}
        policy_region = next((rid for rid in nearest if rid in policies), None)
        views.append(
            RegionRule(
                region=region,
                rule=Rule(**values, version=chosen.id if chosen else 0),
                rule_from=by_id.get(rule_region) if rule_region is not None else None,
                policy=policies[policy_region] if policy_region is not None else _default_policy(region),
                policy_from=by_id.get(policy_region) if policy_region is not None else None,
            )
        )
    return views


def _default_policy(region: Region) -> RegionPolicy:
    return RegionPolicy(region_id=region.id, notice_days=3, expiry="none", settlement_month=1, settlement_day=1)


def _region(code: str) -> Region:
    region = community_services.region_by_code(code)
    if region is None:
        raise NotFound("region_not_found")
    return region


def rule_of(actor: User, region_code: str) -> RegionRule:
    """One region's rule and policy, for an admin over it."""
    authorize(actor, "admin")
    region = _region(region_code)
    authorize(actor, "admin", region)
    return region_rules(db.session, [region])[0]


def put_region_rule(*, actor: User, region_code: str, now: datetime, **given) -> RegionRule:
    """An admin sets the rule and policy of a region in their subtree (the contract's field names).
    A field left out keeps what is in force there now, inherited or own; the region then has its
    own rule (and policy), and its subtree inherits it unless a region below has its own. Sending
    what is already the region's own changes nothing (PUT is idempotent)."""
    authorize(actor, "admin")
    region = _region(region_code)
    with unit_of_work() as session:
        authorize(actor, "admin", region)
        current = region_rules(session, [region])[0]
        rule_values = {f: getattr(current.rule, f) for f in RULE_FIELDS} | {
            CONTRACT_NAMES[k]: v for k, v in given.items() if k in CONTRACT_NAMES and v is not None
        }
        _require_sane(rule_values)
        if any(k in CONTRACT_NAMES and v is not None for k, v in given.items()) and (
            not current.own_rule or any(getattr(current.rule, f) != rule_values[f] for f in RULE_FIELDS)
        ):
            set_rule(actor=actor, region=region, category=None, now=now, **rule_values)
        policy_values = {f: getattr(current.policy, f) for f in POLICY_FIELDS} | {
            k: v for k, v in given.items() if k in POLICY_FIELDS and v is not None
        }
        if any(k in POLICY_FIELDS and v is not None for k, v in given.items()) and (
            not current.own_policy or any(getattr(current.policy, f) != policy_values[f] for f in POLICY_FIELDS)
        ):
            set_policy(actor=actor, region=region, now=now, **policy_values)
        session.flush()
        return region_rules(session, [region])[0]


def _require_sane(values: dict[str, int]) -> None:
    if values["daily_cap_minutes"] < values["unit_minutes"]:
        raise Invalid(errors={"daily_cap_minutes": ["每日上限不能少于取整单位"]})
    try:
        Rule(**values)
    except ValueError as exc:
        raise Invalid(errors={"_": ["规则数值不正确"]}) from exc
