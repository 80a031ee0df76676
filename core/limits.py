"""What a request body may be: its size and, on the JSON API, its media type.

A JSON request or a plain form is small: `BODY_MAX_BYTES` (1 MiB by default). Only a multipart form
(a photo, a spreadsheet) may reach `MAX_CONTENT_LENGTH`; a domain raises the limit further for the
endpoints that take more (community's imports). The limit is set before any before-request hook
reads the form (the page's CSRF check does): URL value preprocessors run first. Werkzeug refuses a
larger body with 413 when it is read: problem+json on the API, a Chinese page on a form.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, request

from core.errors import DomainError


class UnsupportedMediaType(DomainError):
    status = 415
    default_code = "unsupported_media_type"


def is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def require_json() -> None:
    """A JSON route's body must say it is JSON; an empty body needs no media type."""
    if is_json(request.mimetype) or (not request.content_length and not request.get_data(cache=True)):
        return
    raise UnsupportedMediaType(
        detail=f"请求内容须为 JSON（Content-Type: application/json），收到的是 {request.mimetype or '未标明的类型'}"
    )


def _limit(endpoint: str | None, values: dict[str, Any] | None) -> None:
    if request.mimetype != "multipart/form-data":
        request.max_content_length = current_app.config["BODY_MAX_BYTES"]


def init_app(app: Flask) -> None:
    app.url_value_preprocessor(_limit)
