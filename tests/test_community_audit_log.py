"""The audit log as a page and an API (issue 13, Security): each reader sees the entries about the
regions of their subtrees, filtered by actor, action, target and local days, paged with totals,
exported with Chinese headers; phone and ID numbers masked wherever they show."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from community.models import Region
from core import audit, clock
from core.audit import AuditEntry
from core.db import db, unit_of_work
from tests import factories as f
from tests.authz import World, build_world, sign_in_page

PHONE = "13987654321"
ID_NUMBER = "430101199001011234"


@pytest.fixture
def w(app) -> World:
    return build_world()


def write(action: str, region: Region | None, *, actor=None, at: datetime | None = None, **values) -> None:
    with unit_of_work():
        audit.record(
            action,
            values.pop("object_type", "user"),
            values.pop("object_id", 1),
            actor=actor,
            after=values or None,
            region_id=region.id if region else None,
            now=at,
        )


def listed(client, who, query: str = "") -> dict:
    response = client.get(f"/api/v1/audit-log?per_page=100{query}", headers=f.bearer(who))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def region_ids(w: World, *keys: str) -> set[int]:
    """The ids of every region in these regions' subtrees."""
    roots = [w.regions[k] for k in keys]
    rows = db.session.scalars(sa.select(Region)).all()
    return {r.id for r in rows if any(r.path.startswith(root.path) for root in roots)}


def test_each_reader_sees_the_entries_of_their_own_subtrees(client, w):
    write("test.unregioned", None)
    expected = {
        "admin": region_ids(w, "county"),
        "admin_elsewhere": region_ids(w, "t2"),
        "reviewer": region_ids(w, "t1"),
    }
    codes = {r.id: r.code for r in db.session.scalars(sa.select(Region))}
    for who, ids in expected.items():
        body = listed(client, w.users[who])
        seen = {item["region_code"] for item in body["items"]}
        assert seen and seen <= {codes[i] for i in ids}, who
        all_in_scope = db.session.scalar(
            sa.select(sa.func.count()).select_from(AuditEntry).where(AuditEntry.region_id.in_(ids))
        )
        assert body["total"] == all_in_scope, who
    # The county admin sees entries of both townships; neither township's reader sees the other's.
    county = {i["region_code"] for i in listed(client, w.users["admin"])["items"]}
    assert {"430101", "430102"} <= {c[:6] for c in county if c}
    assert not any(i["action"] == "test.unregioned" for i in listed(client, w.users["admin"])["items"])
    # Entries about no region: only for an admin over a top region (here the city).
    city_admin = f.grant(f.user("4300", name="市管理"), "admin", "region", "4300")
    assert any(i["action"] == "test.unregioned" for i in listed(client, city_admin)["items"])
    # A region outside the reader's subtrees is refused, not silently empty.
    outside = client.get("/api/v1/audit-log?region_code=430101", headers=f.bearer(w.users["admin_elsewhere"]))
    assert outside.status_code == 403


def test_filters_by_actor_action_target_and_local_days(client, w):
    t1 = w.regions["t1"]
    admin = w.users["admin"]
    late = datetime(2026, 3, 1, 15, 30, tzinfo=UTC)  # 23:30 on 1 March, local time
    assert clock.local(late).date() == date(2026, 3, 1)
    write("test.one", t1, actor=admin, at=late, object_type="deed", object_id=77)
    write("test.two", t1, actor=w.users["reviewer"], at=datetime(2026, 3, 1, 16, 30, tzinfo=UTC))  # 2 March local
    write("test.two", t1, actor=admin, at=datetime(2026, 2, 28, 15, 59, tzinfo=UTC))  # 28 Feb 23:59 local

    def actions(query: str) -> list[str]:
        return sorted(i["action"] for i in listed(client, admin, query)["items"] if i["action"].startswith("test."))

    assert actions("&from=2026-03-01&to=2026-03-01") == ["test.one"]
    assert actions("&from=2026-03-02&to=2026-03-02") == ["test.two"]
    assert actions("&from=2026-02-28&to=2026-03-02") == ["test.one", "test.two", "test.two"]
    assert actions(f"&actor={admin.id}&action=test.") == ["test.one", "test.two"]
    assert actions("&actor=孙审&action=test.two") == ["test.two"]
    assert actions("&object_type=deed&object_id=77") == ["test.one"]
    body = listed(client, admin, "&object_type=deed&object_id=77")
    assert body["items"][0]["object_name"] == "事迹" and body["items"][0]["actor_name"] == admin.name

    bad = client.get("/api/v1/audit-log?from=2026-03-02&to=2026-03-01", headers=f.bearer(admin))
    assert bad.status_code == 422 and bad.get_json()["code"] == "audit_dates_invalid"
    wide = client.get("/api/v1/audit-log?from=２０２６-03-01", headers=f.bearer(admin))
    assert wide.status_code == 422


def test_pages_of_the_list_carry_the_total(client, w):
    admin = w.users["admin"]
    for i in range(5):
        write("test.paged", w.regions["v1"], actor=admin, n=i)
    first = client.get("/api/v1/audit-log?action=test.paged&per_page=2", headers=f.bearer(admin)).get_json()
    third = client.get("/api/v1/audit-log?action=test.paged&per_page=2&page=3", headers=f.bearer(admin)).get_json()
    assert (first["total"], len(first["items"]), first["page"]) == (5, 2, 1)
    assert len(third["items"]) == 1
    assert [i["after"]["n"] for i in first["items"]] == [4, 3]  # newest first


def test_phone_and_id_numbers_are_masked_in_the_list_the_page_and_the_exports(client, w):
    admin = w.users["admin"]
    write("test.pii", w.regions["v1"], actor=admin, phone=PHONE, note=f"身份证 {ID_NUMBER}，电话{PHONE}")
    item = listed(client, admin, "&action=test.pii")["items"][0]
    assert item["after"]["phone"] == "139****4321"
    assert ID_NUMBER not in item["after"]["note"] and "430***********1234" in item["after"]["note"]

    sign_in_page(client, admin)
    page = client.get("/admin/audit?action=test.pii").get_data(as_text=True)
    csv_body = client.get("/admin/audit/export?format=csv&action=test.pii").get_data()
    xlsx_body = client.get("/api/v1/audit-log/export?format=xlsx&action=test.pii", headers=f.bearer(admin)).data
    sheet = load_workbook(io.BytesIO(xlsx_body)).active
    xlsx_text = " ".join(str(c.value) for row in sheet.iter_rows() for c in row)
    for text in (page, csv_body.decode("utf-8-sig"), xlsx_text):
        assert PHONE not in text and ID_NUMBER not in text
        assert "139****4321" in text


def test_the_exports_have_chinese_headers_and_the_filtered_rows(client, w):
    admin = w.users["admin"]
    for i in range(3):
        write("test.export", w.regions["t1"], actor=admin, n=i)
    write("=cmd|' /C calc'!A0", w.regions["t1"], actor=admin)  # a would-be formula stays text
    response = client.get("/api/v1/audit-log/export?format=csv&action=test.export", headers=f.bearer(admin))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["时间", "操作人", "操作", "操作代码", "对象", "地区", "变更前", "变更后", "IP 地址"]
    assert len(rows) == 4 and {r[3] for r in rows[1:]} == {"test.export"}
    assert rows[1][1] == f"{admin.name}（{admin.id}）" and rows[1][5] == "桃花江镇"

    sign_in_page(client, admin)
    xlsx = client.get("/admin/audit/export?format=xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    assert [c.value for c in sheet[1]][:3] == ["时间", "操作人", "操作"]
    assert all(not str(c.value).startswith("=") for row in sheet.iter_rows(min_row=2) for c in row if c.value)


def test_the_page_filters_pages_and_keeps_what_was_typed(client, w):
    admin = w.users["admin"]
    write("user.totp.reset", w.regions["v1"], actor=admin, object_id=w.users["target"].id)
    sign_in_page(client, admin)
    page = client.get(f"/admin/audit?action=user.totp.reset&object_id={w.users['target'].id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "重置两步验证" in html and "共 1 条" in html
    assert 'class="active">审计日志' in html  # the admin tabs
    bad = client.get("/admin/audit?from=2026-13-45&actor=周管")
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "日期格式应为 YYYY-MM-DD" in html and 'value="周管"' in html
    reversed_dates = client.get("/admin/audit?from=2026-03-02&to=2026-03-01")
    assert reversed_dates.status_code == 422 and "开始日期不能晚于结束日期" in reversed_dates.get_data(as_text=True)


def test_the_second_factor_events_reach_the_log(client, w):
    """Enrolment, a recovery-code use, a reset: each one an entry the admin finds by its action."""
    from community import totp
    from core.db import utcnow

    target = w.users["organizer"]
    enrolment = totp.start(target, utcnow())
    codes = totp.confirm(target, totp.code_at(enrolment.secret, utcnow()), utcnow())
    client.post("/api/v1/auth/token", json={"phone": target.phone, "password": f.PASSWORD, "otp": codes[0]})
    client.post(f"/api/v1/users/{target.id}/totp/reset", headers=f.bearer(w.users["admin"]))
    found = listed(client, w.users["admin"], f"&action=user.totp.&object_id={target.id}")["items"]
    assert [i["action"] for i in reversed(found)] == ["user.totp.enrol", "user.totp.recovery_use", "user.totp.reset"]
