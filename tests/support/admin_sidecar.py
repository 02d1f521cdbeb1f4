"""A running `auth-sidecar serve` with a signing key of its own and the admin API on: the
set-up most token-service tests start from."""

from __future__ import annotations

from pathlib import Path

from authz.keys import write_new_key
from tests.support.oauth import ADMIN_TOKEN, Admin
from tests.support.processes import Sidecar


def admin_sidecar(tmp: Path, env: dict[str, str] | None = None, *, store_url: str | None = None,
                  args: list[str] | None = None, keys: Path | None = None, ephemeral_key: bool = False,
                  admin_token: str = ADMIN_TOKEN, wait_ready: bool = True) -> Sidecar:
    """Started, with a key in `tmp/keys`, the admin token ADMIN_TOKEN and `.admin` to call it;
    `env` adds settings (or replaces these). `store_url`: a Redis store; `args`: serve's
    arguments (`--workers 2`); `keys`: a folder that already holds the keys (shared by several
    sidecars); `ephemeral_key`: no folder at all (the sidecar makes a key in memory);
    `wait_ready=False`: started, not waited for (`.wait_ready()`)."""
    settings = {"AUTH_SIDECAR_ADMIN_TOKEN": admin_token}
    if not ephemeral_key:
        if keys is None:
            keys = tmp / "keys"
            write_new_key(keys)
        settings["AUTH_SIDECAR_KEYS_DIR"] = str(keys)
    if store_url:
        settings["AUTH_SIDECAR_STORE_URL"] = store_url
    s = Sidecar(env={**settings, **(env or {})}, args=args, tmp=tmp).start(wait_ready=wait_ready)
    s.admin = Admin(s.http, admin_token)
    return s
