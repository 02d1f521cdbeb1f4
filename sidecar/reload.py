"""Reload on SIGHUP and when the config file changes (polled every `reload_poll_seconds`).

What reloads (RELOADABLE) is what the decision engine is built from: routes, trusted issuers
and their JWKS, header names, token sources, leeway, and the log level. The new settings
are loaded and validated whole, as at start; a file that does not validate is refused with
one log line and the running settings stay. Other settings (ports, workers, store, keys,
token lifetimes, ...) apply only at the next start; those that differ are named in one log
line. Environment variables and command-line options are read again and still win.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from config import ConfigError, load_settings
from config.settings import Settings

log = logging.getLogger("sidecar.reload")

RELOADABLE = ("routes", "trusted_issuers", "headers", "token_sources", "remove_authorization",
              "dynamic_metadata", "jwks", "leeway_seconds", "log_level")


@dataclass(frozen=True)
class SettingsSource:
    """Where the settings came from: the config file (or None) and command-line overrides."""

    path: str | None
    overrides: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Settings:
        return load_settings(self.path, overrides=self.overrides)

    def digest(self) -> bytes | None:
        if not self.path:
            return None
        try:
            with open(self.path, "rb") as fh:
                return hashlib.sha256(fh.read()).digest()
        except OSError:
            return b"unreadable"


class Reloader:
    def __init__(self, container: Any, source: SettingsSource | None, poll_seconds: float) -> None:
        self.container = container
        self.source = source
        self.poll = poll_seconds if source is not None and source.path else 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.reloads = 0  # applied, for tests and logs

    def request(self) -> None:
        """SIGHUP: reload now (from the event loop's signal handler)."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        seen = self.source.digest() if self.source is not None else None
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll or None)
            except TimeoutError:
                pass
            hup = self._wake.is_set()
            self._wake.clear()
            digest = self.source.digest() if self.source is not None else None
            if not hup and digest == seen:
                continue
            seen = digest
            try:
                await self.reload("SIGHUP" if hup else "config file changed")
            except Exception:
                log.exception("config reload failed; the running config stays")

    async def reload(self, reason: str) -> bool:
        if self.source is None:
            log.warning("reload asked, but the settings were not loaded from a file or the environment")
            return False
        try:
            new = await asyncio.to_thread(self.source.load)
        except ConfigError as exc:
            log.error(f"config reload refused: {exc}; the running config stays", extra={"reason": reason})
            return False
        old: Settings = self.container.settings
        fixed = [name for name in Settings.model_fields
                 if name not in RELOADABLE and getattr(new, name) != getattr(old, name)]
        changed = [name for name in RELOADABLE if getattr(new, name) != getattr(old, name)]
        merged = old.model_copy(update={name: getattr(new, name) for name in RELOADABLE})
        try:
            await self.container.reconfigure(merged)
        except ConfigError as exc:
            log.error(f"config reload refused: {exc}; the running config stays", extra={"reason": reason})
            return False
        except Exception as exc:  # built before anything is swapped: the old parts still serve
            log.error(f"config reload refused: {type(exc).__name__}: {str(exc)[:200]}; the running config stays",
                      extra={"reason": reason})
            return False
        if new.log_level != old.log_level:
            logging.getLogger().setLevel(new.log_level.upper())
        self.reloads += 1
        log.info("config reloaded", extra={"reason": reason, "changed": changed})
        if fixed:
            log.warning(f"config reload: {', '.join(fixed)} changed but apply only after a restart")
        return True
