"""A constant background load of ext_authz Checks (HTTP mode and gRPC) from threads, for
tests that change something under traffic and must see no failed Check."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import grpc
import httpx
from envoy.service.auth.v3 import external_auth_pb2 as pb
from envoy.service.auth.v3 import external_auth_pb2_grpc as pb_grpc


@dataclass
class Outcome:
    at: float  # when the request started (time.time())
    target: str
    mode: str
    path: str
    status: int  # HTTP status; gRPC code mapped: OK 200, else 401/403 from the denied status
    label: str = ""


@dataclass
class CheckLoad:
    """Calls `pick()` -> (token, path, label) and checks it on every target in turn, until stopped."""

    http_targets: list[str]
    grpc_targets: list[str]
    pick: Callable[[], tuple[str, str, str] | None]
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def start(self, threads: int = 2) -> "CheckLoad":
        for i in range(threads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for t in self._threads:
            t.join(30)
        if self.errors:
            raise self.errors[0]
        return self.outcomes

    def _run(self, index: int) -> None:
        clients = [httpx.Client(base_url=t, timeout=10) for t in self.http_targets]
        channels = [grpc.insecure_channel(t) for t in self.grpc_targets]
        stubs = [pb_grpc.AuthorizationStub(c) for c in channels]
        try:
            while not self._stop.is_set():
                picked = self.pick()
                if picked is None:
                    time.sleep(0.01)
                    continue
                token, path, label = picked
                for target, client in zip(self.http_targets, clients):
                    started = time.time()
                    status = client.get("/ext_authz" + path, headers={"authorization": f"Bearer {token}"}).status_code
                    self.outcomes.append(Outcome(started, target, "http", path, status, label))
                for target, stub in zip(self.grpc_targets, stubs):
                    req = pb.CheckRequest()
                    req.attributes.request.http.headers["authorization"] = f"Bearer {token}"
                    req.attributes.request.http.path = path
                    started = time.time()
                    answer = stub.Check(req, timeout=10)
                    status = 200 if answer.status.code == 0 else answer.denied_response.status.code
                    self.outcomes.append(Outcome(started, target, "grpc", path, status, label))
        except BaseException as exc:  # surfaced by stop(): a broken load must fail the test
            self.errors.append(exc)
        finally:
            for client in clients:
                client.close()
            for channel in channels:
                channel.close()
