"""A refresh load: chains of refresh-token rotations in threads, as careful clients run them.

Each chain holds one refresh token and rotates it in a loop. A 503 or a lost answer (the
client's timeout) is retried with the same token after Retry-After; any other refusal breaks
the chain and is recorded. Every answer's status and time is kept for the test to inspect."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx

from harness.oauth import App, login


@dataclass
class Chain:
    app: App
    token: str
    access: str = ""
    rotations: int = 0
    broken: str | None = None
    answers: list[tuple[float, int, str | None]] = field(default_factory=list)  # (time, status, Retry-After)


class RefreshChains:
    def __init__(self, base: str, apps: list[App], timeout: float = 10.0, pause: float = 0.01) -> None:
        self.base = base
        self.chains = [Chain(app, login(base, app).json()["refresh_token"]) for app in apps]
        self.timeout = timeout
        self.pause = pause
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(c,), daemon=True) for c in self.chains]

    def _run(self, chain: Chain) -> None:
        with httpx.Client(base_url=self.base, timeout=self.timeout,
                          auth=(chain.app.client_id, chain.app.client_secret)) as http:
            while not self._stop.is_set() and chain.broken is None:
                try:
                    r = http.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": chain.token})
                except httpx.TransportError:
                    chain.answers.append((time.monotonic(), 0, None))  # lost answer: retry the same token
                    continue
                chain.answers.append((time.monotonic(), r.status_code, r.headers.get("retry-after")))
                if r.status_code == 200:
                    chain.token, chain.access = r.json()["refresh_token"], r.json()["access_token"]
                    chain.rotations += 1
                    time.sleep(self.pause)
                elif r.status_code == 503:
                    time.sleep(min(float(r.headers.get("retry-after", "1")), 1.0) / 4)
                else:
                    chain.broken = f"{r.status_code} {r.text[:200]}"

    def start(self) -> "RefreshChains":
        for thread in self._threads:
            thread.start()
        return self

    def rotations(self) -> list[int]:
        return [c.rotations for c in self.chains]

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def broken(self) -> list[str]:
        return [c.broken for c in self.chains if c.broken]

    def statuses(self) -> set[int]:
        return {status for c in self.chains for _, status, _ in c.answers}

    def unavailable(self) -> list[tuple[float, str | None]]:
        return [(t, retry) for c in self.chains for t, status, retry in c.answers if status == 503]
