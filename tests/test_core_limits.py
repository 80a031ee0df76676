"""Oversized bodies and wrong media types: a JSON body or a plain form is at most 1 MiB (413), a
multipart form may carry a photo (10 MiB) and an import a large roll; a JSON route refuses a body
that does not say it is JSON (415). The API answers problem+json, a page a Chinese page."""

from __future__ import annotations

import io
import json

import pytest
import sqlalchemy as sa
from werkzeug.test import stream_encode_multipart

from community.models import Region
from core.db import db
from points.models import Deed
from tests import factories as f
from tests.authz import build_world, csrf_token, sign_in_page

MIB = 1024 * 1024


def _multipart(client, path: str, data: dict, **kwargs):
    """POST a large multipart form encoded in memory (the test client would spool it to a temporary
    file that nothing closes)."""
    stream, length, boundary = stream_encode_multipart(data, use_tempfile=False)
    body = stream.read()
    assert len(body) == length
    return client.post(path, data=body, content_type=f"multipart/form-data; boundary={boundary}", **kwargs)


@pytest.fixture
def w(app):
    return build_world()


def _activity(w, description: str) -> dict:
    return {
        "title": "河道清理",
        "description": description,
        "category": "环境整治",
        "department_id": w.departments["d1"].id,
        "region_code": "43010101",
        "address": "河边",
        "starts_at": "2030-01-01T09:00:00+08:00",
        "ends_at": "2030-01-01T11:00:00+08:00",
    }


def test_a_json_body_over_one_mib_is_a_413_problem_and_writes_nothing(client, w):
    body = json.dumps(_activity(w, "很" * (MIB // 2)), ensure_ascii=False).encode()
    assert len(body) > MIB
    response = client.post(
        "/api/v1/activities", data=body, content_type="application/json", headers=f.bearer(w.users["organizer"])
    )
    assert response.status_code == 413 and response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["code"] == "payload_too_large" and "1 MB" in problem["detail"]


def test_a_json_body_under_the_limit_is_read_and_judged_on_its_content(client, w):
    body = _activity(w, "很" * 200_000)  # 600 KB of UTF-8: read, then refused by the field's length
    response = client.post("/api/v1/activities", json=body, headers=f.bearer(w.users["organizer"]))
    assert response.status_code == 422 and "description" in response.get_json()["errors"]


def test_a_plain_form_over_one_mib_gets_a_chinese_page(app, w):
    page = app.test_client()
    sign_in_page(page, w.users["admin"])
    form = {"csrf_token": csrf_token(page), "code": "430103", "name": "镇" * MIB, "level": "township"}
    response = page.post("/admin/regions", data=form)
    assert response.status_code == 413 and response.mimetype == "text/html"
    assert "提交的内容过大：最多 1 MB" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(Region).where(Region.code == "430103")) is None


def test_a_multipart_form_may_carry_a_photo_of_several_mib(app, w):
    page = app.test_client()
    sign_in_page(page, w.users["grid_worker"])
    photo = f.picture(2000, 1500, "PNG") + b"\x00" * (2 * MIB)  # trailing bytes: still one picture
    form = {
        "csrf_token": csrf_token(page),
        "resident_id": str(w.users["resident"].id),
        "deed_type": "haorenhaoshi",
        "description": "帮五保户修屋顶",
        "photo": (io.BytesIO(photo), "big.png"),
    }
    response = _multipart(page, "/deeds/new", form, follow_redirects=True)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Deed)) == 1


def test_an_import_may_be_larger_than_a_json_body(client, w):
    rows = "编码,名称,层级,上级编码\n" + "".join(f"4301{i:02d},镇{i},township,4301\n" for i in range(3, 60))
    padding = "".join(f"# {'x' * 1000}\n" for _ in range(2 * 1024))  # 2 MiB of ignored comment-like rows
    data = {"kind": "regions", "dry_run": "true", "file": (io.BytesIO((rows + padding).encode()), "regions.csv")}
    response = _multipart(client, "/api/v1/imports", data, headers=f.bearer(w.users["admin"]))
    assert response.status_code != 413, response.get_data(as_text=True)[:300]


@pytest.mark.parametrize(
    ("content_type", "payload"),
    [
        ("text/plain", b'{"name": "x"}'),
        ("application/x-www-form-urlencoded", b"name=x&region_code=4301"),
        ("multipart/form-data; boundary=b", b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--b--'),
        ("application/xml", b"<department><name>x</name></department>"),
        (None, b'{"name": "x"}'),
    ],
    ids=["text", "urlencoded", "multipart", "xml", "none"],
)
def test_a_json_route_refuses_another_media_type_with_a_415_problem(client, w, content_type, payload):
    headers = f.bearer(w.users["admin"])
    if content_type:
        headers["Content-Type"] = content_type
    response = client.post("/api/v1/departments", data=payload, headers=headers)
    assert response.status_code == 415 and response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["code"] == "unsupported_media_type" and "application/json" in problem["detail"]


def test_json_with_a_charset_or_a_json_suffix_type_and_an_empty_body_are_accepted(client, w):
    headers = f.bearer(w.users["admin"])
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        body = json.dumps({"name": f"司法所{content_type[-4:]}", "region_code": "4301"}, ensure_ascii=False)
        response = client.post("/api/v1/departments", data=body, headers={**headers, "Content-Type": content_type})
        assert response.status_code == 201, (content_type, response.get_json())
    activity_id = _published(w)
    empty = client.post(f"/api/v1/activities/{activity_id}/signups", headers=f.bearer(w.users["resident"]))
    assert empty.status_code == 201, empty.get_json()


def _published(w) -> int:
    from tests.volunteer_helpers import upcoming

    return upcoming(w)
