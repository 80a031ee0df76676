"""Configuration, read from the environment (and an optional `.env`), one class per environment.

Development and tests get safe defaults; production refuses to start without a `SECRET_KEY`.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parent.parent


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _json_object(name: str) -> dict:
    value = os.environ.get(name)
    if value in (None, ""):
        return {}
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be a JSON object: {exc}") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"{name} must be a JSON object")
    return parsed


def normalize_database_url(url: str) -> str:
    """Accept the usual `postgres://` / `postgresql://` spellings and select psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


class Config:
    ENV_NAME = "base"
    TESTING = False
    SECRET_KEY: str | None = None
    INSTANCE_DIR = Path(os.environ.get("MORALCREDIT_INSTANCE", ROOT / "instance"))
    SQLALCHEMY_DATABASE_URI = ""
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict] = {"pool_pre_ping": True}
    TIMEZONE = os.environ.get("MORALCREDIT_TIMEZONE", "Asia/Shanghai")
    SCHEDULER = os.environ.get("MORALCREDIT_SCHEDULER", "on")
    # Jobs that walk every resident take this many rows a page (core.db.keyset_pages).
    JOB_BATCH_SIZE = _int("MORALCREDIT_JOB_BATCH_SIZE", 2000)
    # A job's cron fields instead of its own: {"apply-expiry": {"hour": 1, "minute": 5}}.
    JOB_TRIGGERS: ClassVar[dict] = _json_object("MORALCREDIT_JOB_TRIGGERS")
    JSON_AS_ASCII = False
    # Reverse proxies in front of the app that set X-Forwarded-For/-Proto (docs/operations.md
    # "Behind a proxy"); 0 ignores those headers, which any client could forge.
    TRUSTED_PROXIES = _int("MORALCREDIT_TRUSTED_PROXIES", 0)
    # Requests larger than this are refused (413) before they are read: a photo is at most 8 MB.
    # That is for multipart forms (a photo); a JSON body or a plain form is at most BODY_MAX_BYTES.
    MAX_CONTENT_LENGTH = 10 * 1024 * 1024
    BODY_MAX_BYTES = _int("MORALCREDIT_BODY_MAX_KB", 1024) * 1024
    # An import's spreadsheet may be larger (a county's residents as .csv: about 60 bytes a row).
    IMPORT_MAX_BYTES = _int("MORALCREDIT_IMPORT_MAX_MB", 100) * 1024 * 1024

    # Sessions: signed cookies (the app tier keeps no state), idle timeout slides on each request.
    PERMANENT_SESSION_LIFETIME = timedelta(minutes=_int("MORALCREDIT_IDLE_MINUTES", 30))
    SESSION_REFRESH_EACH_REQUEST = True
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _bool("MORALCREDIT_SECURE_COOKIES", False)
    WTF_CSRF_TIME_LIMIT = None  # the session lifetime already bounds the token

    # Passwords and sign-in limits (DESIGN §8: complexity, lock-out, idle timeout).
    PASSWORD_HASH_METHOD = "scrypt:32768:8:1"
    API_TOKEN_TTL = timedelta(hours=_int("MORALCREDIT_TOKEN_HOURS", 24 * 7))
    # Sign-in limits (docs/operations.md "Sign-in limits"). Only failures count, never successes,
    # so a village office or kiosk sharing one address signs in as often as it likes.
    # An account locks after this many failures (from any addresses) within the window...
    LOGIN_MAX_FAILURES = _int("MORALCREDIT_LOGIN_MAX_FAILURES", 5)
    LOGIN_FAILURE_WINDOW_MINUTES = _int("MORALCREDIT_LOGIN_FAILURE_WINDOW_MINUTES", 15)
    # ...while one address is slowed on one account one failure earlier, so that a stranger at a
    # single address can never lock a resident out; capped below LOGIN_MAX_FAILURES where used.
    LOGIN_ADDRESS_ACCOUNT_FAILURES = _int("MORALCREDIT_LOGIN_ADDRESS_ACCOUNT_FAILURES", 4)
    # One address guessing across many accounts is slowed after this many failures in the window.
    LOGIN_ADDRESS_FAILURES = _int("MORALCREDIT_LOGIN_ADDRESS_FAILURES", 50)
    # A lock is short: 5 minutes, doubling on each repeated lock up to 30, forgotten after a day.
    LOGIN_LOCK_MINUTES = _int("MORALCREDIT_LOGIN_LOCK_MINUTES", 5)
    LOGIN_LOCK_MAX_MINUTES = _int("MORALCREDIT_LOGIN_LOCK_MAX_MINUTES", 30)
    LOGIN_LOCK_FORGET_HOURS = _int("MORALCREDIT_LOGIN_LOCK_FORGET_HOURS", 24)

    # Sign-in counters in Redis when set (docs/operations.md "Redis"), else in the database. Keys
    # start with the prefix, so that installations can share a Redis; while it does not answer, the
    # database serves, and Redis is tried again after REDIS_RETRY_SECONDS.
    REDIS_URL = os.environ.get("REDIS_URL") or None
    REDIS_PREFIX = os.environ.get("MORALCREDIT_REDIS_PREFIX", "moralcredit:")
    REDIS_RETRY_SECONDS = _int("MORALCREDIT_REDIS_RETRY_SECONDS", 30)

    # The one-time password-reset code an admin gives a resident (docs/operations.md "Accounts an
    # admin looks after"): it works once, for this many hours, and wears out after wrong tries.
    PASSWORD_RESET_HOURS = _int("MORALCREDIT_PASSWORD_RESET_HOURS", 24)
    PASSWORD_RESET_MAX_FAILURES = _int("MORALCREDIT_PASSWORD_RESET_MAX_FAILURES", 5)

    # The personal code (会员码) changes every minute; verification accepts a little clock skew.
    PERSONAL_CODE_STEP_SECONDS = 60
    PERSONAL_CODE_SKEW_STEPS = 1

    # An admin adjustment of more points than this (either way) waits for a second admin.
    ADJUSTMENT_REVIEW_ABOVE = _int("MORALCREDIT_ADJUSTMENT_REVIEW_ABOVE", 20)

    # Keys the ID-number digests; falls back to SECRET_KEY. Set it once, before residents register.
    PII_KEY = os.environ.get("MORALCREDIT_PII_KEY") or None
    AUDIT_RETENTION_DAYS = max(_int("MORALCREDIT_AUDIT_RETENTION_DAYS", 365), 183)

    @classmethod
    def load(cls) -> dict:
        values = {k: getattr(cls, k) for k in dir(cls) if k.isupper()}
        values["SECRET_KEY"] = os.environ.get("SECRET_KEY") or cls.SECRET_KEY
        url = os.environ.get("DATABASE_URL") or cls.default_database_url()
        values["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(url)
        return values

    @classmethod
    def default_database_url(cls) -> str:
        return f"sqlite:///{cls.INSTANCE_DIR / 'moralcredit.db'}"


class DevelopmentConfig(Config):
    ENV_NAME = "development"
    # A fixed development key keeps sessions across restarts; never used in production.
    SECRET_KEY = "dev-only-not-secret"


class TestingConfig(Config):
    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "test-only-not-secret"
    SCHEDULER = "off"
    REDIS_URL = None  # a test that wants Redis says so (tests/conftest.py `shared_redis`)
    # Fast hashing keeps the suite quick; production uses scrypt above.
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"

    @classmethod
    def default_database_url(cls) -> str:
        return "sqlite://"


class ProductionConfig(Config):
    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = _bool("MORALCREDIT_SECURE_COOKIES", True)


CONFIGS = {c.ENV_NAME: c for c in (DevelopmentConfig, TestingConfig, ProductionConfig)}


class ConfigError(RuntimeError):
    pass


def load_config(name: str | None = None, overrides: dict | None = None) -> dict:
    # Production is the default so that a deployment that forgets to say otherwise is safe.
    name = name or os.environ.get("MORALCREDIT_ENV", "production")
    if name not in CONFIGS:
        raise ConfigError(f"unknown MORALCREDIT_ENV {name!r}; one of {sorted(CONFIGS)}")
    values = CONFIGS[name].load()
    values.update(overrides or {})
    if values.get("SQLALCHEMY_DATABASE_URI"):
        values["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(values["SQLALCHEMY_DATABASE_URI"])
    if not isinstance(values.get("TRUSTED_PROXIES"), int) or values["TRUSTED_PROXIES"] < 0:
        raise ConfigError("MORALCREDIT_TRUSTED_PROXIES must be a whole number, 0 or more")
    if not values.get("SECRET_KEY"):
        raise ConfigError(
            "SECRET_KEY must be set in production (or set MORALCREDIT_ENV=development to use the development defaults)"
        )
    return values
