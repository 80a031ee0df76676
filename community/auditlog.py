"""Reading the audit log (管理 › 审计日志 and `GET /api/v1/audit-log`): filters, scope, masking, export.

An entry is about the region its writer named (`audit_log.region_id`: the resident's, the store's,
the activity's region, or the region itself); an admin or reviewer reads the entries about regions
of their subtrees. Entries about no region (a global rule, an import) are read only by those over
a top region (one without a parent). Phone and ID numbers in what an entry kept are masked on the
way out, whatever its writer stored. Read-only: the table refuses changes (core.audit).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from flask import Response

from community import pii, queries, services
from community.models import Region, User
from core import clock, sheets
from core.audit import AuditEntry
from core.db import db
from core.errors import Invalid
from core.security import authorize

READERS = ("admin", "reviewer")
EXPORT_MAX = 50_000

ACTION_NAMES = {
    "user.register": "注册",
    "user.claim": "认领账号",
    "user.password_changed": "修改密码",
    "user.locked": "账号锁定",
    "user.unlock": "解除锁定",
    "user.deactivate": "停用账号",
    "user.reactivate": "启用账号",
    "user.password_reset.issue": "生成密码重置码",
    "user.password_reset.use": "使用密码重置码",
    "user.card_issue": "发放会员卡",
    "user.close": "注销账号",
    "user.totp.enrol": "启用两步验证",
    "user.totp.disable": "关闭两步验证",
    "user.totp.reset": "重置两步验证",
    "user.totp.recovery_use": "使用恢复码",
    "user.totp.recovery_regenerate": "重新生成恢复码",
    "region.create": "新增地区",
    "region_security.set": "设置两步验证要求",
    "department.create": "新增部门",
    "role.grant": "授权",
    "role.revoke": "撤销授权",
    "import.apply": "批量导入",
    "import.refused": "批量导入被拒",
    "point_rule.create": "修改积分规则",
    "region_policy.set": "修改地区积分政策",
    "points.adjust": "积分调整",
    "points.adjust.request": "申请积分调整",
    "points.adjust.approve": "批准积分调整",
    "points.adjust.reject": "驳回积分调整",
    "deed_type.create": "新增事迹类型",
    "deed_type.update": "修改事迹类型",
    "deed.record": "记录事迹",
    "deed.approve": "审核通过事迹",
    "deed.reject": "驳回事迹",
    "deed.void": "撤销事迹",
    "deed.object": "对事迹提出异议",
    "deed.objection.uphold": "异议成立",
    "deed.objection.dismiss": "异议不成立",
    "deed.post": "事迹入账",
    "certificate.issue": "开具服务证明",
    "archive.verify": "档案校验",
    "activity.create": "创建活动",
    "activity.update": "修改活动",
    "attendance.annul": "作废签到记录",
    "attendance.auto_close": "自动签退",
    "signup.create": "报名",
    "signup.cancel": "取消报名",
    "signup.decide": "审核报名",
    "store.create": "新增超市",
    "item.create": "新增商品",
    "item.update": "修改商品",
    "item.picture": "更换商品图片",
    "item.stocktake": "盘点",
    "redemption.create": "兑换",
    "redemption.void": "作废兑换",
}
# Prefixes a filter may choose: every action of a kind.
ACTION_GROUPS = {
    "user.": "账号（全部）",
    "user.totp.": "两步验证（全部）",
    "role.": "授权（全部）",
    "points.": "积分调整（全部）",
    "deed.": "好人好事与扣分（全部）",
    "activity.": "活动（全部）",
    "signup.": "报名（全部）",
    "attendance.": "签到签退（全部）",
    "item.": "商品与库存（全部）",
    "redemption.": "兑换（全部）",
    "import.": "批量导入（全部）",
}
OBJECT_NAMES = {
    "user": "用户",
    "region": "地区",
    "department": "部门",
    "role_grant": "授权",
    "import": "导入",
    "deed": "事迹",
    "store": "超市",
    "item": "商品",
    "redemption": "兑换",
    "attendance": "签到记录",
    "activity": "活动",
    "adjustment": "积分调整",
    "point_rule": "积分规则",
    "deed_type": "事迹类型",
    "signup": "报名",
    "certificate": "服务证明",
    "archive": "档案",
}

# A mainland mobile number, and an ID number (18 characters, the last may be X; or the old 15).
_PHONE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
_ID_NUMBER = re.compile(r"(?<![0-9])(?:[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9A-Za-z])")


def mask_text(text: str) -> str:
    text = _ID_NUMBER.sub(lambda m: pii.mask_id(m.group(0)), text)
    return _PHONE.sub(lambda m: pii.mask_phone(m.group(0)) or "", text)


def masked(value: Any) -> Any:
    """`value` with every phone and ID number inside its text masked (keys too)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {mask_text(str(k)): masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def action_name(action: str) -> str:
    return ACTION_NAMES.get(action, action)


@dataclass(frozen=True)
class Filters:
    actor: str | None = None  # an id (digits), else part of the actor's name
    action: str | None = None  # exact, or a prefix ending in "." ("user.")
    object_type: str | None = None
    object_id: str | None = None
    first: date | None = None  # local days, inclusive
    last: date | None = None
    region_code: str | None = None

    def __post_init__(self) -> None:
        if self.first and self.last and self.first > self.last:
            raise Invalid("audit_dates_invalid", errors={"from": ["开始日期不能晚于结束日期"]})


def roots_of(user: User, region_code: str | None = None) -> list[Region]:
    """The subtrees whose entries `user` reads (403 without the role; 403 for a region not theirs)."""
    authorize(user, READERS)
    if region_code:
        region = services.require_region(region_code)
        authorize(user, READERS, region)
        return [region]
    return services.admin_regions(user, roles=READERS)


def _conditions(user: User, filters: Filters) -> list[sa.ColumnElement[bool]]:
    roots = roots_of(user, filters.region_code)
    scope = AuditEntry.region_id.in_(queries.region_ids_under(roots))
    if not filters.region_code and any(root.parent_id is None for root in roots):
        scope = sa.or_(scope, AuditEntry.region_id.is_(None))
    where = [scope]
    if filters.actor:
        actor = filters.actor.strip()
        if actor.isascii() and actor.isdigit() and len(actor) <= 12:
            where.append(AuditEntry.actor_id == int(actor))
        else:
            where.append(AuditEntry.actor_name.contains(actor[:64], autoescape=True))
    if filters.action:
        action = filters.action.strip()[:64]
        if action.endswith("."):
            where.append(AuditEntry.action.startswith(action, autoescape=True))
        else:
            where.append(AuditEntry.action == action)
    if filters.object_type:
        where.append(AuditEntry.object_type == filters.object_type.strip()[:32])
    if filters.object_id:
        where.append(AuditEntry.object_id == filters.object_id.strip()[:64])
    if filters.first:
        where.append(AuditEntry.at >= clock.day_start(filters.first))
    if filters.last:
        where.append(AuditEntry.at < clock.day_range(filters.last)[1])
    return where


NEWEST_FIRST = (AuditEntry.at.desc(), AuditEntry.id.desc())


def entries(user: User, filters: Filters) -> sa.Select:
    """The entries `user` may read that pass `filters`, newest first."""
    return sa.select(AuditEntry).where(*_conditions(user, filters)).order_by(*NEWEST_FIRST)


def entry_ids(user: User, filters: Filters) -> sa.Select:
    """The ids of `entries`, in order: a page sorts only keys (index `ix_audit_log_region_at`),
    then `load` reads its rows."""
    return sa.select(AuditEntry.id).where(*_conditions(user, filters)).order_by(*NEWEST_FIRST)


def load(ids: Sequence[int]) -> list[AuditEntry]:
    """The entries with these ids, in the order given."""
    if not ids:
        return []
    found = {e.id: e for e in db.session.scalars(sa.select(AuditEntry).where(AuditEntry.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


def shown(ids: Sequence[int]) -> list[dict[str, Any]]:
    """A page of entries as the page and the API show them (`as_dict`)."""
    items = load(ids)
    regions = region_names(items)
    return [as_dict(entry, regions) for entry in items]


def action_choices(chosen: str | None = None) -> list[tuple[str, str]]:
    """A filter's choices: the groups, then each action by name (and one typed in a URL)."""
    choices = list(ACTION_GROUPS.items()) + sorted(ACTION_NAMES.items())
    if chosen and chosen not in ACTION_GROUPS and chosen not in ACTION_NAMES:
        choices.append((chosen, chosen))
    return choices


def region_names(items: Iterable[AuditEntry]) -> dict[int, Region]:
    ids = {e.region_id for e in items if e.region_id is not None}
    if not ids:
        return {}
    return {r.id: r for r in db.session.scalars(sa.select(Region).where(Region.id.in_(ids)))}


def as_dict(entry: AuditEntry, regions: dict[int, Region]) -> dict[str, Any]:
    """An entry as the page and the API show it: the action named, the region by code, PII masked."""
    region = regions.get(entry.region_id) if entry.region_id is not None else None
    return {
        "id": entry.id,
        "at": entry.at,
        "actor_id": entry.actor_id,
        "actor_name": entry.actor_name,
        "action": entry.action,
        "action_name": action_name(entry.action),
        "object_type": entry.object_type,
        "object_name": OBJECT_NAMES.get(entry.object_type, entry.object_type),
        "object_id": entry.object_id,
        "region_code": region.code if region else None,
        "region_name": region.name if region else None,
        "before": masked(entry.before),
        "after": masked(entry.after),
        "ip": entry.ip,
    }


COLUMNS = (
    ("at", "时间"),
    ("actor", "操作人"),
    ("action_name", "操作"),
    ("action", "操作代码"),
    ("object", "对象"),
    ("region", "地区"),
    ("before", "变更前"),
    ("after", "变更后"),
    ("ip", "IP 地址"),
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _row(item: dict[str, Any]) -> list[str]:
    def text(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False, sort_keys=True)
        value = str(value)
        return "'" + value if value.startswith(_FORMULA) else value  # never a formula in a spreadsheet

    actor = f"{item['actor_name'] or ''}（{item['actor_id']}）" if item["actor_id"] is not None else "系统"
    values = {
        "at": f"{clock.local(item['at']):%Y-%m-%d %H:%M:%S}",
        "actor": actor,
        "action_name": item["action_name"],
        "action": item["action"],
        "object": f"{item['object_name']} {item['object_id'] or ''}".strip(),
        "region": item["region_name"] or "",
        "before": item["before"],
        "after": item["after"],
        "ip": item["ip"],
    }
    return [text(values[key]) for key, _ in COLUMNS]


EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "xlsx": sheets.XLSX_TYPE}


def export(user: User, filters: Filters, fmt: str) -> bytes:
    """Every entry passing `filters` as a .csv (UTF-8 with BOM, for Excel) or .xlsx, Chinese headers;
    422 past `EXPORT_MAX` rows (narrow the dates)."""
    select = entries(user, filters)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(select.order_by(None).subquery()))
    if total > EXPORT_MAX:
        raise Invalid("audit_export_too_large")
    items = db.session.scalars(select).all()
    regions = region_names(items)
    rows = [_row(as_dict(entry, regions)) for entry in items]
    headers = [header for _, header in COLUMNS]
    if fmt == "xlsx":
        return sheets.xlsx(headers, rows, title="审计日志")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def download(user: User, filters: Filters, fmt: str) -> Response:
    """`export` as an attachment, never cached."""
    return Response(
        export(user, filters, fmt),
        mimetype=EXPORT_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="audit-log-{clock.today():%Y%m%d}.{fmt}"',
            "Cache-Control": "no-store",
        },
    )
