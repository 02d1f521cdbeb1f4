"""Admin API for our own signing keys: their life cycle, and starting a rotation.

A rotation writes the new key into keys_dir, so it needs a writable folder; a folder mounted
from a Kubernetes Secret is read-only, and there the rotation is `auth-sidecar keys rotate`
on a copy, then the Secret is updated (docs/deploy.md). Every replica follows the folder.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from authz.keys import KeyRing, RotationPending, rotate
from config.settings import Settings

log = logging.getLogger("sidecar.keys")
NO_STORE = {"Cache-Control": "no-store"}


def _iso(when: float | None) -> str | None:
    return None if when is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def _conflict(description: str) -> JSONResponse:
    return JSONResponse({"error": "conflict", "error_description": description}, status_code=409, headers=NO_STORE)


class SigningKeysApi:
    def __init__(self, ring: KeyRing, settings: Settings, retention: float) -> None:
        self.ring = ring
        self.settings = settings
        self.retention = retention

    async def list(self, _: Request) -> Response:
        self.ring.tick()
        return JSONResponse({"keys": [self._view(s) for s in self.ring.states]}, headers=NO_STORE)

    @staticmethod
    def _view(state: Any) -> dict[str, Any]:
        return {"kid": state.kid, "alg": state.alg, "state": state.state,
                "activates_at": _iso(state.activates_at), "retires_at": _iso(state.retires_at)}

    async def rotate(self, _: Request) -> Response:
        folder = self.ring.folder
        if folder is None:
            return _conflict("no keys_dir: the signing key is ephemeral and cannot be rotated")
        if not os.access(folder, os.W_OK):
            return _conflict("keys_dir is not writable here (a mounted Secret?): "
                             "run `auth-sidecar keys rotate` on its source")
        try:
            done = rotate(folder, self.settings.signing_alg, self.settings.keys.publish_ahead, self.retention)
        except RotationPending as exc:
            return _conflict(str(exc))
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                return _conflict(f"keys_dir is not writable here ({exc.strerror})")
            raise
        try:
            self.ring.rescan()  # this replica at once; the others on their next look at the folder
        except ValueError:
            pass  # a folder that does not parse: the watcher says so, the keys in use stay
        log.info("signing key rotation scheduled", extra={"kid": done.kid, "activates_at": _iso(done.activates_at),
                                                           "pruned": list(done.pruned)})
        return JSONResponse({"kid": done.kid, "activates_at": _iso(done.activates_at), "pruned": list(done.pruned),
                             "keys": [self._view(s) for s in self.ring.states]}, status_code=201, headers=NO_STORE)
