"""A running `auth-sidecar serve` with a signing key of its own and the admin API on: the
set-up most token-service tests start from."""

from __future__ import annotations

from pathlib import Path

from authz.keys import write_new_key
from tests.support.oauth import ADMIN_TOKEN, Admin
from tests.support.processes import Sidecar


def admin_sidecar(tmp: Path, env: dict[str, str] | None = None, args: list[str] | None = None) -> Sidecar:
    """Started, with a key in `tmp/keys`, the admin token ADMIN_TOKEN and `.admin` to call it;
    `env` adds settings (or replaces these), `args` to `auth-sidecar serve`."""
    write_new_key(tmp / "keys")
    s = Sidecar(env={"AUTH_SIDECAR_KEYS_DIR": str(tmp / "keys"), "AUTH_SIDECAR_ADMIN_TOKEN": ADMIN_TOKEN,
                     **(env or {})}, args=args, tmp=tmp).start()
    s.admin = Admin(s.http)
    return s
