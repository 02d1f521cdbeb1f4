"""Follows keys_dir while the process runs: a key added, replaced or removed applies within
`keys.poll_seconds`, without a restart; a key's activation or retirement applies on time.

The folder is read whole (names and contents of its *.pem files) and compared by digest: a
Kubernetes Secret mounted as a volume changes by swapping its `..data` symbolic link, which
leaves names and modification times of the visible links as they were, so only the
contents tell. A folder that stops parsing (a half-copied key, an empty folder) is refused
with one log line per distinct content, and the keys in use stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time

from authz.keys import KeyRing, SigningKey, keys_from_files, read_key_files

log = logging.getLogger("sidecar.keys")


class KeyWatcher:
    def __init__(self, ring: KeyRing, poll_seconds: float) -> None:
        assert ring.folder is not None
        self.ring = ring
        self.poll = poll_seconds
        self._seen: bytes | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.ring.on_change = lambda events: log.info("signing keys changed", extra={"events": events})
        if self.ring.early:
            log.warning("no signing key has reached its activation time; the earliest signs ahead of it",
                        extra={"kid": self.ring.current.kid})
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            # wake for the next poll, or sooner when a key activates or is gone
            await asyncio.sleep(max(min(self.poll, self.ring.next_change - time.time()), 0.01))
            try:
                await self.check()
            except Exception:  # never let the watcher die: the keys in use stay
                log.exception("keys_dir check failed")

    async def check(self) -> None:
        """One look at the folder (the file reads and key parsing off the event loop)."""
        found = await asyncio.to_thread(self._read)
        if found is not None:
            self.ring.replace(found)
        self.ring.tick()

    def _read(self) -> list[SigningKey] | None:
        folder = self.ring.folder
        try:
            files = read_key_files(folder)
        except (ValueError, OSError) as exc:
            return self._refuse(f"unreadable:{exc}".encode(), str(exc))
        digest = hashlib.sha256(b"".join(hashlib.sha256(name.encode() + b"\0" + data).digest()
                                         for name, data in files)).digest()
        if digest == self._seen:
            return None
        try:
            keys = keys_from_files(files, folder)
        except ValueError as exc:
            return self._refuse(digest, str(exc))
        self._seen = digest
        return keys

    def _refuse(self, digest: bytes, reason: str) -> None:
        if digest != self._seen:
            self._seen = digest
            log.warning("keys_dir change refused; the keys in use stay", extra={"error": reason[:300]})
        return None
