"""Passwords, signed tokens and the one authorization helper every route uses.

`authorize()` checks role *and* scope. It knows no domain: a user offers the scope keys its grants
cover (`grant_keys(role)`), a target offers the scope keys that contain it (`scope_keys()`: its
store, its department, its region and every ancestor region). A role covers a target when the two
sets meet. A user without the role anywhere gets 403; with the role but not over this target, 403
or — where the caller may not even learn that the object exists — 404.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.security import check_password_hash, generate_password_hash

from core.errors import Forbidden, NotFound, Unauthorized

ScopeKey = tuple[str, int]


class ScopeTarget(Protocol):
    def scope_keys(self) -> set[ScopeKey]: ...


class Principal(Protocol):
    def grant_keys(self, role: str) -> set[ScopeKey]: ...


def covers(user: Any, roles: str | Iterable[str], target: ScopeTarget | None = None) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    roles = [roles] if isinstance(roles, str) else list(roles)
    wanted = target.scope_keys() if target is not None else None
    for role in roles:
        keys = user.grant_keys(role)
        if keys and (wanted is None or keys & wanted):
            return True
    return False


def authorize(user: Any, roles: str | Iterable[str], target: ScopeTarget | None = None, *, hide: bool = False) -> None:
    """Raise unless `user` holds one of `roles` with a scope covering `target` (any scope if None)."""
    if user is None or not getattr(user, "is_authenticated", False):
        raise Unauthorized()
    if covers(user, roles, target):
        return
    if hide and covers(user, roles):
        raise NotFound()
    raise Forbidden()


# Passwords -------------------------------------------------------------------------------------

_LETTER = re.compile(r"[A-Za-z]")
_DIGIT = re.compile(r"\d")


def password_problems(password: str, *, phone: str | None = None) -> list[str]:
    """The complexity rules (DESIGN §8), as Chinese messages; empty when the password is fine."""
    problems = []
    if len(password) < 8:
        problems.append("密码至少 8 位")
    if len(password) > 128:
        problems.append("密码不能超过 128 位")
    if not (_LETTER.search(password) and _DIGIT.search(password)):
        problems.append("密码须同时包含字母和数字")
    if phone and phone in password:
        problems.append("密码不能包含手机号")
    if len(set(password)) < 4:
        problems.append("密码过于简单")
    return problems


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        # Spend the same time as a real check so that unknown accounts cannot be told apart.
        generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])
        return False
    return check_password_hash(password_hash, password)


# Keys and signed tokens ------------------------------------------------------------------------


def derived_key(purpose: str) -> bytes:
    """A key for one purpose, derived from SECRET_KEY, so that no two uses share a key."""
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, b"moralcredit:" + purpose.encode(), hashlib.sha256).digest()


def _api_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="api-token-v1")


def issue_api_token(user_id: int, version: int, now: datetime) -> tuple[str, datetime]:
    ttl: timedelta = current_app.config["API_TOKEN_TTL"]
    token = _api_serializer().dumps({"uid": user_id, "v": version})
    return token, now + ttl


def read_api_token(token: str) -> tuple[int, int]:
    """Return (user id, token version) of a valid bearer token, or raise Unauthorized."""
    ttl: timedelta = current_app.config["API_TOKEN_TTL"]
    try:
        data = _api_serializer().loads(token, max_age=int(ttl.total_seconds()))
    except SignatureExpired as exc:
        raise Unauthorized("token_expired") from exc
    except BadSignature as exc:
        raise Unauthorized("token_invalid") from exc
    if not isinstance(data, dict) or not isinstance(data.get("uid"), int):
        raise Unauthorized("token_invalid")
    return data["uid"], int(data.get("v", 0))


def keyed_digest(purpose: str, value: str) -> str:
    """A stable keyed hash (for uniqueness checks of values we must not keep in clear)."""
    return hmac.new(derived_key(purpose), value.encode(), hashlib.sha256).hexdigest()
