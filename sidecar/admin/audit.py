"""The audit trail: one JSON line on the `audit` logger per admin write (create, patch,
delete, key rotation), whatever its outcome. It names the action, the target path, the
answer's status, the request id and a fingerprint of the admin token; never a body, so
never a secret, password or hash."""

from __future__ import annotations

import hashlib
import logging
import re
import uuid

log = logging.getLogger("audit")
log.setLevel(logging.INFO)  # written whatever the service's log level

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def fingerprint(token: str) -> str:
    """First 12 hex digits of the token's SHA-256: tells tokens apart, reveals nothing."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def request_id(header: str | None) -> str:
    """The caller's x-request-id when it is a plain id (it is logged), else a new one."""
    return header if header and _REQUEST_ID.match(header) else uuid.uuid4().hex


def record(action: str, target: str, status: int, rid: str, admin: str) -> None:
    log.info("admin write", extra={"action": action, "target": target, "result": status,
                                   "request_id": rid, "admin": admin})
