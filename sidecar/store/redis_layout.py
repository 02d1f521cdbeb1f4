"""Where the Redis store keeps what: key names and their hash tags (the keys one operation
touches share a Cluster slot), the admin list indexes, the Lua scripts, and how their
replies read back. The same names on a single Redis, Sentinel and a Cluster."""

from __future__ import annotations

import json
from typing import Any

from sidecar.store.records import Client, RefreshRecord, ServiceKey, ServiceUser, Tenant, User, from_dict

P = "as:"
CHANNEL = P + "revocations"

# KEYS: old token, new token, family revoked mark, family's access tokens, family's grace slot
# ARGV: new record, now, family expiry, access token jti, access token exp, rotation id (a prefix
#       of the new token's digest), the successor sealed under the old token, grace in ms,
#       old token's rotation id
# A used token whose recorded successor is this call's own is this very rotation run again
# (redis-py retried the script after a timeout or reconnect): "ok" again, nothing changes.
# A used token whose successor is in the grace slot, still alive: "replayed" with the sealed
# successor. Any other use of a used token is reuse: the family is revoked.
ROTATE = """
local used = redis.call('HGET', KEYS[1], 'used')
if not used then return {'missing', ''} end
local data = redis.call('HGET', KEYS[1], 'data')
if redis.call('EXISTS', KEYS[3]) == 1 then return {'revoked', data} end
local exp = tonumber(redis.call('HGET', KEYS[1], 'exp'))
if exp <= tonumber(ARGV[2]) then return {'expired', data} end
local function add_access()
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[4])
  local at = math.ceil(tonumber(ARGV[5])) + 1
  if redis.call('EXPIRETIME', KEYS[4]) < at then redis.call('EXPIREAT', KEYS[4], at) end
end
if used == '1' then
  if redis.call('HGET', KEYS[1], 'next') == ARGV[6] then return {'ok', data} end
  local grace = redis.call('GET', KEYS[5])
  if grace and string.sub(grace, 1, #ARGV[9] + 1) == ARGV[9] .. ' ' then
    add_access()
    return {'replayed', data, string.sub(grace, #ARGV[9] + 2)}
  end
  redis.call('SET', KEYS[3], '1', 'EXAT', math.ceil(exp) + 1)
  return {'reused', data}
end
redis.call('HSET', KEYS[1], 'used', '1', 'next', ARGV[6])
redis.call('HSET', KEYS[2], 'data', ARGV[1], 'used', '0', 'exp', ARGV[3])
redis.call('EXPIREAT', KEYS[2], math.ceil(tonumber(ARGV[3])) + 1)
add_access()
if tonumber(ARGV[8]) > 0 then redis.call('SET', KEYS[5], ARGV[9] .. ' ' .. ARGV[7], 'PX', ARGV[8]) end
return {'ok', data}
"""
# rotation ids: 16 hex digits of a token's digest name it among its family's tokens (the
# digest is of a server-made 256-bit secret: no one picks it to collide)
ROTATION_ID = 16

# A conditional write of one admin record (one key: one Cluster slot). KEYS: the record;
# ARGV: its revision as read (the SHA-1 of its stored bytes, sidecar/store/revisions.py),
# its new bytes ('' deletes it). 1 done; 0 the record changed or went since (nothing done:
# a write never brings a deleted record back).
REPLACE = """
local now = redis.call('GET', KEYS[1])
if not now or redis.sha1hex(now) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
return 1
"""

# One failure on a throttle key (a hash: n = count, until = when its delay ends).
# KEYS: the key; ARGV: now, free, base, cap, window
FAIL = """
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local free = tonumber(ARGV[2])
local ends = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if n >= free then
  local delay = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ math.min(n - free, 40))
  ends = tonumber(ARGV[1]) + delay
  redis.call('HSET', KEYS[1], 'until', string.format('%.3f', ends))
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
return string.format('%.3f', ends)
"""


def throttle_key(key: str) -> str:
    return f"{P}thr:{key}"


def throttle_reply(reply: Any) -> tuple[int, float]:
    count, until = reply
    return int(count or 0), float(until or 0)


def refresh_key(family: str, digest: str) -> str:
    return f"{P}rt:{{{family}}}:{digest}"


def family_key(family: str, what: str) -> str:
    return f"{P}fam:{{{family}}}:{what}"


def refresh_record(data: bytes | None, used: bytes | None) -> RefreshRecord | None:
    return from_dict(RefreshRecord, {**json.loads(data), "used": used == b"1"}) if data else None


# admin list indexes: kind → (record key prefix, record class)
RECORDS: dict[str, tuple[str, type]] = {
    "tenants": (f"{P}tenant:", Tenant), "clients": (f"{P}client:", Client), "users": (f"{P}user:", User),
    "service_users": (f"{P}su:", ServiceUser), "secrets": (f"{P}client:", Client), "keys": (f"{P}sukey:", ServiceKey)}
INDEXED = f"{P}ix:built"


def index_key(kind: str, owner: str | None) -> str:
    return f"{P}ix:tenants" if kind == "tenants" else f"{P}ix:{{{owner}}}:{kind}"


def client_index(client: Client) -> str:
    return index_key("secrets", client.service_user_id) if client.service_user_id else index_key("clients", client.tenant)


def index_of(record: Any) -> tuple[str, str]:
    """(index key, id) of a record read back while indexing existing data."""
    if isinstance(record, Tenant):
        return index_key("tenants", None), record.id
    if isinstance(record, Client):
        return client_index(record), record.client_id
    if isinstance(record, User):
        return index_key("users", record.tenant), record.id
    if isinstance(record, ServiceUser):
        return index_key("service_users", record.tenant), record.id
    return index_key("keys", record.service_user_id), record.kid


def principal_keys(subject: str | None, client_id: str | None) -> list[str]:
    return [f"{P}revoked:sub:{subject or ''}", f"{P}revoked:client:{client_id or ''}"]


def principal_revoked(marks: list, subject: str | None, client_id: str | None, issued_at: float | None) -> bool:
    """Whether the revocation marks read from `principal_keys` cover a token issued at `issued_at`."""
    for value, at in zip((subject, client_id), marks):
        if value and at is not None and (issued_at is None or issued_at <= float(at)):
            return True
    return False
