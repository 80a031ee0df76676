"""Uploaded pictures: checked, upright, shrunk, stripped of metadata, stored once, served with the
right audience; a bad file is a clear 422 (or a friendly page) and changes nothing."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from PIL import Image

from core import uploads
from core.audit import AuditEntry
from core.db import db, utcnow
from exchange import stores
from exchange.models import Item
from points.models import Deed
from tests import factories as f
from tests.authz import build_world, csrf_token, sign_in_page
from tests.factories import fresh


@pytest.fixture
def w(app):
    return build_world()


def gps_exif(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (28.0, 31.0, 0.0), 3: "E", 4: (112.0, 8.0, 0.0)}  # GPSInfo: where it was taken
    exif[0x010F] = "Phone maker"
    if orientation:
        exif[0x0112] = orientation
    return exif


def test_a_phone_photo_is_turned_upright_shrunk_and_loses_its_metadata():
    raw = f.picture(3000, 2000, exif=gps_exif(orientation=6))  # 6: the camera was held sideways
    assert Image.open(io.BytesIO(raw)).getexif().get(0x8825)
    data, width, height = uploads.normalize(raw)
    stored = Image.open(io.BytesIO(data))
    assert stored.format == "JPEG"
    assert (width, height) == stored.size == (853, 1280)  # rotated to portrait, at most 1280 px
    assert not stored.getexif() and "exif" not in stored.info


@pytest.mark.parametrize(
    "raw, text",
    [
        (b"", "请选择一张图片"),
        (b"%PDF-1.4 not a picture", "无法识别"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "无法识别"),  # a truncated PNG
        (b"x" * (uploads.MAX_BYTES + 1), "不能超过"),
    ],
    ids=["empty", "pdf", "truncated", "too_big"],
)
def test_what_is_not_a_usable_picture_is_a_clear_422(raw, text):
    with pytest.raises(uploads.Invalid) as refused:
        uploads.normalize(raw)
    assert text in refused.value.errors["photo"][0]


def test_a_picture_too_large_in_pixels_is_refused_before_it_is_decoded(monkeypatch):
    monkeypatch.setattr(uploads, "MAX_PIXELS", 100 * 100)
    with pytest.raises(uploads.Invalid) as refused:
        uploads.normalize(f.picture(200, 200, "PNG"))
    assert "像素" in refused.value.errors["photo"][0]


def test_the_same_picture_is_stored_once(app, w):
    raw = f.picture(fmt="PNG")
    one = uploads.store(raw, purpose="item", actor_id=None, now=utcnow())
    two = uploads.store(raw, purpose="item", actor_id=None, now=utcnow())
    assert one == two and len(one) == 64
    assert db.session.scalar(sa.select(sa.func.count()).select_from(uploads.Upload)) == 1


def record_deed(app, w, photo: bytes, filename: str):
    """The grid worker's deed form, posted with a file."""
    client = app.test_client()
    sign_in_page(client, w.users["grid_worker"])
    form = {
        "csrf_token": csrf_token(client),
        "resident_id": str(w.users["resident"].id),
        "deed_type": "haorenhaoshi",
        "description": "帮五保户修屋顶",
        "photo": (io.BytesIO(photo), filename),
    }
    return client.post("/deeds/new", data=form, follow_redirects=True)


def test_a_grid_worker_attaches_a_photo_that_only_the_right_people_see(app, w):
    response = record_deed(app, w, f.picture(exif=gps_exif()), "IMG_0001.jpg")
    assert response.status_code == 200 and "等待审核" in response.get_data(as_text=True)
    deed = db.session.scalar(sa.select(Deed).order_by(Deed.id.desc()))
    assert deed.photo and deed.description == "帮五保户修屋顶"

    reviewer = app.test_client()
    sign_in_page(reviewer, w.users["reviewer"])
    assert f"/deeds/{deed.id}/photo" in reviewer.get("/deeds/review").get_data(as_text=True)
    photo = reviewer.get(f"/deeds/{deed.id}/photo")
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    assert photo.headers["Cache-Control"].startswith("private")
    assert not Image.open(io.BytesIO(photo.data)).getexif()
    again = reviewer.get(f"/deeds/{deed.id}/photo", headers={"If-None-Match": photo.headers["ETag"]})
    assert again.status_code == 304 and not again.data

    stranger = app.test_client()
    sign_in_page(stranger, w.users["stranger"])
    assert stranger.get(f"/deeds/{deed.id}/photo").status_code == 404


def test_a_bad_photo_records_nothing_and_says_why(app, w):
    before = db.session.scalar(sa.select(sa.func.count()).select_from(Deed))
    response = record_deed(app, w, b"not a picture", "virus.exe")
    assert response.status_code == 422 and "无法识别这张图片" in response.get_data(as_text=True)
    fresh()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Deed)) == before
    assert db.session.scalar(sa.select(sa.func.count()).select_from(uploads.Upload)) == 0


def test_an_oversized_upload_is_refused_with_a_friendly_page(app, w, monkeypatch):
    assert app.config["MAX_CONTENT_LENGTH"] == 10 * 1024 * 1024
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 4096)  # the same refusal, without 10 MB in a test
    response = record_deed(app, w, b"\xff" * 8192, "huge.jpg")
    assert response.status_code == 413 and "提交的内容过大" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Deed)) == 0


def test_an_item_picture_is_public_and_listed_in_the_api(app, w):
    oil = w.items["oil"]
    stores.set_picture(actor=w.users["clerk"], item_id=oil.id, picture=f.picture(fmt="PNG"), now=utcnow())
    client = app.test_client()
    items = client.get(f"/api/v1/stores/{w.stores['s1'].id}/items").get_json()["items"]
    listed = {i["name"]: i["picture_url"] for i in items}
    assert listed["食用油"] == f"/stores/{w.stores['s1'].id}/items/{oil.id}/picture" and listed["大米"] is None
    picture = client.get(listed["食用油"])
    assert picture.status_code == 200 and picture.headers["Cache-Control"].startswith("public")
    # Not through another store's address, and not for an item without a picture.
    assert client.get(f"/stores/{w.stores['s2'].id}/items/{oil.id}/picture").status_code == 404
    assert client.get(f"/stores/{w.stores['s1'].id}/items/{w.items['rice'].id}/picture").status_code == 404
    # Taken away again, audited both times.
    stores.set_picture(actor=w.users["clerk"], item_id=oil.id, picture=None, now=utcnow())
    assert db.session.get(Item, oil.id).picture is None
    actions = db.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.action == "item.picture")).all()
    assert len(actions) == 2


def test_a_clerk_without_a_file_is_told_to_choose_one(app, w):
    client = app.test_client()
    sign_in_page(client, w.users["clerk"])
    response = client.post(
        f"/stores/{w.stores['s1'].id}/goods",
        data={"csrf_token": csrf_token(client), "action": "picture", "item_id": str(w.items["oil"].id)},
        follow_redirects=True,
    )
    assert "请选择一张图片" in response.get_data(as_text=True)
    fresh()
    assert db.session.get(Item, w.items["oil"].id).picture is None


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header declares `width` x `height` pixels, with a tiny body: what a bomb looks like."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


@pytest.mark.parametrize("width, height", [(20000, 10000), (12000, 8000)], ids=["bomb_error", "bomb_warning"])
def test_a_picture_claiming_huge_dimensions_is_a_clear_422_before_decoding(width, height):
    with pytest.raises(uploads.Invalid) as refused:
        uploads.normalize(png_claiming(width, height))
    assert refused.value.status == 422 and list(refused.value.errors) == ["photo"]


def test_a_decompression_bomb_on_the_deed_form_is_a_friendly_page_and_records_nothing(app, w):
    response = record_deed(app, w, png_claiming(20000, 10000), "bomb.png")
    assert response.status_code == 422 and "flash-error" in response.get_data(as_text=True)
    fresh()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Deed)) == 0


def test_a_decompression_bomb_as_an_item_picture_is_a_problem_not_a_500(app, w):
    page = app.test_client()
    sign_in_page(page, w.users["clerk"])
    form = {
        "csrf_token": csrf_token(page),
        "action": "picture",
        "item_id": str(w.items["oil"].id),
        "picture": (io.BytesIO(png_claiming(20000, 10000)), "bomb.png"),
    }
    response = page.post(f"/stores/{w.stores['s1'].id}/goods", data=form)
    assert response.status_code == 422 and "flash-error" in response.get_data(as_text=True)
    fresh()
    assert db.session.get(Item, w.items["oil"].id).picture is None
