"""Uploaded pictures (a deed's photo, an item's picture), kept in the database.

The app tier is stateless and may run on several hosts, so pictures live in the shared database,
not on a local disk. Every upload is checked and re-encoded before it is stored: it must be a
JPEG, PNG, WebP or GIF picture within a byte and a pixel limit; it is turned upright, shrunk to at
most 1280 px and saved as a JPEG without metadata (a phone photo's EXIF holds where it was taken). The stored picture is
addressed by the SHA-256 of its bytes, so the same picture uploaded twice is stored once and a key
cannot be guessed. Rows are never changed; whoever references a key decides who may see it.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from datetime import datetime

import sqlalchemy as sa
from flask import Response, request
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, db, unit_of_work, utcnow
from core.errors import Invalid, NotFound

MAX_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_SIDE = 1280
FORMATS = {"JPEG", "PNG", "WEBP", "GIF", "MPO"}


class Upload(db.Model):
    __tablename__ = "upload"

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(sa.String(16))
    content_type: Mapped[str] = mapped_column(sa.String(32), default="image/jpeg")
    width: Mapped[int] = mapped_column(sa.Integer)
    height: Mapped[int] = mapped_column(sa.Integer)
    size: Mapped[int] = mapped_column(sa.Integer)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def _bad(field: str, text: str) -> Invalid:
    return Invalid(errors={field: [text]})


def normalize(raw: bytes, field: str = "photo") -> tuple[bytes, int, int]:
    """The picture in `raw`, upright, at most MAX_SIDE px, as a metadata-free JPEG; or a 422."""
    if not raw:
        raise _bad(field, "请选择一张图片")
    if len(raw) > MAX_BYTES:
        raise _bad(field, f"图片不能超过 {MAX_BYTES // (1024 * 1024)} MB")
    too_big = _bad(field, f"图片像素过大（最多 {MAX_PIXELS // 1_000_000} 百万像素），请缩小后再上传")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Opening reads only the header; the declared size is checked before any pixel is decoded.
            with Image.open(io.BytesIO(raw)) as probe:
                if probe.format not in FORMATS:
                    raise _bad(field, "只支持 JPG、PNG、WebP 或 GIF 图片")
                if probe.width * probe.height > MAX_PIXELS:
                    raise too_big
                probe.verify()
            with Image.open(io.BytesIO(raw)) as image:
                image.seek(0)
                picture = ImageOps.exif_transpose(image)
                picture = picture.convert("RGB")
                picture.thumbnail((MAX_SIDE, MAX_SIDE))
                out = io.BytesIO()
                picture.save(out, "JPEG", quality=82, optimize=True)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refuses a header that declares far more pixels than it will decode (a "bomb").
        raise too_big from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise _bad(field, "无法识别这张图片，请换一张") from exc
    return out.getvalue(), picture.width, picture.height


def store(raw: bytes, *, purpose: str, actor_id: int | None, now: datetime, field: str = "photo") -> str:
    """Check, re-encode and keep a picture; returns its key. Joins the caller's unit of work."""
    data, width, height = normalize(raw, field)
    key = hashlib.sha256(data).hexdigest()
    with unit_of_work() as session:
        if session.get(Upload, key) is None:
            try:
                with session.begin_nested():
                    session.add(
                        Upload(
                            key=key,
                            purpose=purpose,
                            width=width,
                            height=height,
                            size=len(data),
                            data=data,
                            created_by_id=actor_id,
                            created_at=now,
                        )
                    )
            except IntegrityError:
                pass  # the same picture, stored a moment ago by someone else
    return key


def from_request(name: str) -> bytes | None:
    """The bytes of an optional file field of the current form, or None when none was chosen."""
    upload = request.files.get(name)
    if upload is None or not upload.filename:
        return None
    return upload.read(MAX_BYTES + 1)


def send(key: str | None, *, public: bool) -> Response:
    """Serve a stored picture; cached long (its key is its content), privately unless public."""
    row = db.session.get(Upload, key) if key else None
    if row is None:
        raise NotFound()
    etag = f'"{row.key[:32]}"'
    if request.headers.get("If-None-Match") == etag:
        response = Response(status=304)
    else:
        response = Response(row.data, mimetype=row.content_type)
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = f"{'public' if public else 'private'}, max-age=31536000, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
