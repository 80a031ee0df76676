"""Domain errors and the one set of handlers that turn them into responses.

Services raise a `DomainError` with a stable machine code; API requests get
`application/problem+json` (`type, title, status, detail, code` and, for 422, `errors`), pages get a
friendly Chinese page. Each domain keeps the Chinese titles of its codes in one place and adds them
to an app in its `init_app` (`register_messages`); outside an app only core's titles are known.
Never a 500 for bad input.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, has_app_context, json, render_template, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_TYPE = "https://moralcredit.example/problems/"
EXTENSION = "moralcredit.messages"

MESSAGES: dict[str, str] = {
    "malformed_json": "请求内容不是有效的 JSON",
    "validation_failed": "提交的内容有误",
    "unauthorized": "请先登录",
    "token_expired": "登录已过期，请重新登录",
    "token_invalid": "登录凭证无效",
    "forbidden": "没有权限进行此操作",
    "not_found": "找不到该内容",
    "conflict": "当前状态不允许此操作",
    "idempotency_conflict": "相同的请求编号已用于另一项操作",
    "rate_limited": "操作过于频繁，请稍后再试",
    "method_not_allowed": "不支持该请求方式",
    "payload_too_large": "提交的内容过大",
    "unsupported_media_type": "不支持该内容类型",
    "bad_request": "请求有误",
    "csrf_failed": "页面已过期，请刷新后重试",
    "unavailable": "服务暂时不可用",
    "internal_error": "系统出了点问题，请稍后再试",
}


def register_messages(app: Flask, messages: dict[str, str]) -> None:
    """Add a domain's Chinese titles of its error codes to `app`. A code means one thing: a domain
    that gives a known code another title is refused at start-up (its errors would otherwise be
    titled by whichever domain was wired last); such a domain passes its own `title` instead."""
    known = app.extensions[EXTENSION]
    clashes = sorted(code for code, text in messages.items() if code in known and known[code] != text)
    if clashes:
        raise ValueError(f"error codes already titled otherwise: {', '.join(clashes)}")
    known.update(messages)


def message(code: str) -> str:
    messages = current_app.extensions.get(EXTENSION, MESSAGES) if has_app_context() else MESSAGES
    return messages.get(code, MESSAGES["bad_request"])


class DomainError(Exception):
    status = 400
    default_code = "bad_request"

    def __init__(
        self,
        code: str | None = None,
        detail: str | None = None,
        *,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
        title: str | None = None,
    ) -> None:
        self.code = code or self.default_code
        self.title = title or message(self.code)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers or {}
        super().__init__(f"{self.code}: {self.detail}")

    def field_errors(self) -> dict[str, list[str]]:
        """Messages per field, or the detail under "_" when the error names no field (for forms)."""
        return self.errors or {"_": [self.detail]}

    @property
    def text(self) -> str:
        """Every message in one line, for a page's flash."""
        return "；".join(m for ms in self.field_errors().values() for m in ms)


class BadRequest(DomainError):
    status = 400
    default_code = "bad_request"


class Unauthorized(DomainError):
    status = 401
    default_code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    default_code = "forbidden"


class NotFound(DomainError):
    status = 404
    default_code = "not_found"


class Conflict(DomainError):
    status = 409
    default_code = "conflict"


class Invalid(DomainError):
    """Invalid input or a rule refused it (422)."""

    status = 422
    default_code = "validation_failed"


class RateLimited(DomainError):
    status = 429
    default_code = "rate_limited"

    def __init__(self, code: str | None = None, detail: str | None = None, *, retry_after: int = 60):
        super().__init__(code, detail, headers={"Retry-After": str(max(1, int(retry_after)))})


def problem(
    status: int,
    code: str,
    detail: str | None = None,
    *,
    title: str | None = None,
    errors: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + code,
        "title": title or message(code),
        "status": status,
        "detail": detail or title or message(code),
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/problem+json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    if status == 401:
        response.headers.setdefault("WWW-Authenticate", 'Bearer realm="moralcredit"')
    return response


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}


def size_text(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{max(1, limit // 1024)} KB"


def _page(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    html = render_template("core/error.html", status=status, code=code, title=message(code), detail=detail)
    response = Response(html, status=status, mimetype="text/html")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = dict(MESSAGES)

    @app.before_request
    def _refuse_nul_in_forms() -> None:
        # A NUL character in a form or query value cannot be stored (PostgreSQL) and is never
        # typed by a person: refuse the request before any page or service sees it.
        for values in (request.args, request.form):
            bad = sorted({name for name, listed in values.lists() if any("\x00" in v for v in listed)})
            if bad and wants_json():
                raise Invalid(errors={name: ["内容不能包含控制字符"] for name in bad})
            if bad:
                raise BadRequest("bad_request", "提交的内容包含无效字符")

    @app.errorhandler(DomainError)
    def handle_domain_error(error: DomainError) -> Response:
        if wants_json():
            return problem(
                error.status, error.code, error.detail, title=error.title, errors=error.errors, headers=error.headers
            )
        return _page(error.status, error.code, error.detail, error.headers)

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = _HTTP_CODES.get(status, "internal_error" if status >= 500 else "bad_request")
        if getattr(error, "description", "") and "CSRF" in str(error.description):
            code = "csrf_failed"
        detail = message(code)
        if status == 413 and request.max_content_length:
            detail = f"提交的内容过大：最多 {size_text(request.max_content_length)}"
        if wants_json():
            return problem(status, code, detail)
        return _page(status, code, detail)

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return problem(500, "internal_error")
        return _page(500, "internal_error", message("internal_error"))
