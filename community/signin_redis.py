"""Sign-in counts in Redis (`REDIS_URL`): the database's limits (community/signin.py), each attempt
counted by one Lua script, atomically, before its password is checked, so that no attempt costs a
database write. All times are the caller's `now`, in microseconds; a key's time to live only lets
Redis forget what no longer counts.

Keys, under the installation's prefix:
- `signin:addr:{ip}`: the address's failures, a sorted set of attempt ids by time;
- `signin:addr-phone:{ip}:{digest}`: its failures on one phone (a keyed digest: no phone numbers);
- `signin:user:{id}`: the account's failures; `signin:state:{id}`: its lock (until, level, reset).
The lock is also written to the `users` row, which admins see and which serves while Redis is away;
a newer reset in the row (an unlock, a password reset, a sign-in while Redis was away) wins.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.redisstore import SharedRedis, from_micros, micros

RESERVE = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local address_limit, here_limit, account_limit = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local lock, lock_max, forget = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local has_user = ARGV[9] == '1'
local keep, state_keep = tonumber(ARGV[13]), tonumber(ARGV[14])

local function oldest(key, since)
  local first = redis.call('ZRANGEBYSCORE', key, since, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  return tonumber(first[2] or now)
end

local since = now - window
if redis.call('ZCOUNT', KEYS[1], since, '+inf') >= address_limit then
  return {'address_throttled', oldest(KEYS[1], since) + window}
end
local locked, level = 0, 0
if has_user then
  local state = redis.call('HMGET', KEYS[4], 'until', 'level', 'reset')
  if not state[3] or tonumber(ARGV[12]) > tonumber(state[3]) then
    state = {ARGV[10], ARGV[11], ARGV[12]}
    redis.call('HSET', KEYS[4], 'until', ARGV[10], 'level', ARGV[11], 'reset', ARGV[12])
    redis.call('EXPIRE', KEYS[4], state_keep)
  end
  locked, level = tonumber(state[1]), tonumber(state[2])
  if locked > now then
    return {'account_locked', locked}
  end
  if tonumber(state[3]) >= since then
    since = tonumber(state[3]) + 1
  end
end
local here = redis.call('ZCOUNT', KEYS[2], since, '+inf')
if here >= here_limit then
  return {'login_throttled', oldest(KEYS[2], since) + window}
end
local remaining = here_limit - here - 1
local throttled_until = 0
if remaining == 0 then
  throttled_until = oldest(KEYS[2], since) + window
end
local locked_until = 0
if has_user then
  local failures = redis.call('ZCOUNT', KEYS[3], since, '+inf') + 1
  remaining = math.min(remaining, account_limit - failures)
  if failures >= account_limit then
    if not (locked > now - forget) then
      level = 0
    end
    locked_until = now + math.min(lock * 2 ^ math.min(level, 16), lock_max)
    level = level + 1
    redis.call('HSET', KEYS[4], 'until', locked_until, 'level', level, 'reset', now)
    redis.call('EXPIRE', KEYS[4], state_keep)
  end
end
local id = redis.call('INCR', KEYS[5])
redis.call('EXPIRE', KEYS[5], state_keep)
local counted = has_user and 3 or 2
for i = 1, counted do
  redis.call('ZADD', KEYS[i], now, id)
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window - 60 * 1000000)
  redis.call('EXPIRE', KEYS[i], keep)
end
return {'counted', id, remaining, locked_until, throttled_until, level}
"""


@dataclass(frozen=True)
class Refused:
    """The attempt is refused without a password check: `code` until `until`."""

    code: str  # account_locked, login_throttled (this address on this phone) or address_throttled
    until: datetime


@dataclass(frozen=True)
class Counted:
    """The attempt is counted as a failure, to be forgotten should its password be right."""

    attempt_id: int
    keys: tuple[str, ...]
    remaining: int
    locked_until: datetime | None
    lockouts: int
    throttled_until: datetime | None


def _phone_digest(phone: str, secret: str) -> str:
    return hashlib.blake2b(phone.encode(), key=secret.encode()[:64], digest_size=12).hexdigest()


def reserve(shared: SharedRedis, *, phone: str, ip: str, now: datetime, limits: Any, user: Any, secret: str):
    """Count one attempt, or refuse it: a `Counted` or a `Refused` (raises `redisstore.Error`)."""
    keys = (
        shared.key("signin", "addr", ip),
        shared.key("signin", "addr-phone", ip, _phone_digest(phone, secret)),
        shared.key("signin", "user", user.id if user is not None else 0),
        shared.key("signin", "state", user.id if user is not None else 0),
        shared.key("signin", "seq"),
    )
    args = [
        micros(now),
        micros_of(limits.window),
        limits.address,
        limits.address_account,
        limits.account,
        micros_of(limits.lock),
        micros_of(limits.lock_max),
        micros_of(limits.forget),
        1 if user is not None else 0,
        micros(user.locked_until) if user is not None else 0,
        (user.lockouts or 0) if user is not None else 0,
        micros(user.failures_reset_at) if user is not None else 0,
        int(limits.window.total_seconds()) + 60,
        int((limits.lock_max + limits.forget).total_seconds()) + 60,
    ]
    outcome = shared.script(RESERVE)(keys=list(keys), args=args)
    code = outcome[0].decode()
    if code != "counted":
        return Refused(code, from_micros(outcome[1]))
    attempt_id, remaining, locked_until, throttled_until, level = (int(v) for v in outcome[1:])
    return Counted(
        attempt_id=attempt_id,
        keys=keys[:3] if user is not None else keys[:2],
        remaining=remaining,
        locked_until=from_micros(locked_until),
        lockouts=level,
        throttled_until=from_micros(throttled_until),
    )


def forget(shared: SharedRedis, counted: Counted) -> None:
    """A right password: the attempt no longer counts against its address (successes never count)."""
    with shared.client.pipeline(transaction=True) as pipe:
        for key in counted.keys:
            pipe.zrem(key, counted.attempt_id)
        pipe.execute()


def micros_of(span: timedelta) -> int:
    return span // timedelta(microseconds=1)
