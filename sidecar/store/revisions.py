"""A record's revision: the SHA-1 of its stored form (the JSON a Redis store keeps), so any
change to a record changes it, and a Redis script can compute the same value
(redis.sha1hex) to compare it atomically. The admin API's conditional writes and ETags
are made of it. SHA-1 names content here; no secret depends on it."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from sidecar.store.records import Client, ServiceUser, Tenant, User, to_dict

# the records a PATCH changes, by the kind the admin lists name them
Editable = Literal["tenants", "clients", "users", "service_users"]
KINDS: dict[type, Editable] = {Tenant: "tenants", Client: "clients", User: "users", ServiceUser: "service_users"}


def stored(record: Any) -> bytes:
    """What a store keeps of a record (RedisStore writes these very bytes)."""
    return json.dumps(to_dict(record)).encode()


def revision(raw: bytes) -> str:
    return hashlib.sha1(raw).hexdigest()


def revision_of(record: Any) -> str:
    return revision(stored(record))


def ident(record: Any) -> str:
    return record.client_id if isinstance(record, Client) else record.id
