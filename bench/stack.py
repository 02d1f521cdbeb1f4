"""Everything the cases run against, on loopback: the token service's key, an external IdP's
key (the proxy cases verify its tokens, as a mesh usually does; `--alg` picks it), the
sidecar (one worker), the two transport floors, the two ceilings (nghttpd, nginx), one Envoy
with a listener per case, and on first use one redis-server. Stopped in reverse order."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import httpx
import redis
import yaml

from authz.keys import KeyRing, public_pem, write_new_key
from bench import ceilings, envoy_config
from bench.minter import Minter
from harness.net import free_port, wait_until
from harness.oauth import Admin, App
from harness.processes import Proc, Sidecar, envoy_binary

ISSUER = "http://127.0.0.1:8080"
IDP, API = "https://idp.bench.example", "bench-api"
ADMIN = "bench-admin-token"
# argon2 at its cheapest, for the rows that measure what comes after the login
CHEAP_HASH = {"AUTH_SIDECAR_PASSWORD_HASHING__MEMORY_KIB": "1024", "AUTH_SIDECAR_PASSWORD_HASHING__TIME_COST": "1"}
FLOORS = ("floor_grpc_port", "floor_http_port")
CEILINGS = {"ceiling_grpc": "ceiling_grpc_port", "ceiling_http": "ceiling_http_port",
            "ceiling_grpc_allow": "ceiling_grpc_allow_port"}  # row -> its server's port


def new_app(base: str, grant_types: list[str]) -> App:
    """A tenant, a client with these grants and a user alice on the sidecar at `base`."""
    return Admin(base, ADMIN).app(grant_types, scopes=("read", "write"), org="o", projects=("p",))


class Stack:
    def __init__(self, tmp: Path, alg: str, compare: Path | None = None, workers2: bool = True) -> None:
        self.tmp, self.alg = tmp, alg
        self.compare = compare  # another checkout: its sidecar behind a listener of its own
        self.workers2 = workers2  # start the two-worker sidecar (row sidecar_grpc_hit_workers2) and its Redis
        self.main2: Sidecar | None = None
        self.procs: list[Proc | Sidecar] = []
        self._redis_url: str | None = None

    def start(self) -> "Stack":
        keys = self.tmp / "keys"
        write_new_key(keys, "ES256")  # the token service's own key
        self.own = Minter(KeyRing.from_dir(keys), ISSUER, ISSUER)
        idp_ring = KeyRing.ephemeral_key(self.alg)
        self.idp = Minter(idp_ring, IDP, API)
        self.token = self.idp(1, "hit")[0]
        self.auth = {"authorization": f"Bearer {self.token}"}
        trusted = [{"issuer": IDP, "audiences": [API], "keys": [{
            "kid": idp_ring.current.kid, "alg": self.alg,
            "pem": public_pem(idp_ring.current.private_key.public_key()).decode()}]}]
        self.env = {"AUTH_SIDECAR_KEYS_DIR": str(keys), "AUTH_SIDECAR_ADMIN_TOKEN": ADMIN,
                    "AUTH_SIDECAR_ROUTES": json.dumps([{"path_prefix": "/", "required_scopes": "read"}]),
                    "AUTH_SIDECAR_TRUSTED_ISSUERS": json.dumps(trusted), "AUTH_SIDECAR_LOG_LEVEL": "warning"}
        self.main = self.sidecar()
        ports = {name: free_port() for name in ("admin", "noauth", "jwt_authn", "jwt_authn_cached", "sidecar_grpc",
                                                "sidecar_http", "floor_grpc", "floor_http", "ceiling_grpc",
                                                "ceiling_http", "ceiling_grpc_allow", *FLOORS, *CEILINGS.values())}
        ports.update(sidecar_grpc_port=self.main.grpc_port, sidecar_http_port=self.main.http_port)
        if self.workers2:
            # two workers on Redis, as `--workers 2` on two cores runs; each connection asked to
            # keep to 16 streams, so that one Envoy worker's Checks reach both
            self.main2 = self.sidecar(workers=2, AUTH_SIDECAR_STORE_URL=self.redis_url(),
                                      AUTH_SIDECAR_GRPC_MAX_CONCURRENT_STREAMS="16")
            ports.update(sidecar_grpc_w2=free_port(), sidecar_grpc_w2_port=self.main2.grpc_port)
        if self.compare is not None:
            self.compared = Sidecar(self.env, args=["--workers", "1"], tmp=self.tmp, root=self.compare)
            self.procs.append(self.compared)
            ports.update(compared_grpc=free_port(), compared_grpc_port=self.compared.start().grpc_port)
        for kind, name in zip(("grpc", "http"), FLOORS):
            self.procs.append(Proc([sys.executable, "-m", "bench.floors", kind, str(ports[name])]))
        self.missing: dict[str, str] = {}  # ceiling row -> why it cannot run (its server is not installed)
        # the second gRPC ceiling serves the very bytes of the sidecar's allow for the bench's token
        starts = (ceilings.nghttpd, ceilings.nginx,
                  lambda tmp, port: ceilings.nghttpd(tmp, port, ceilings.allow_of(self.main.grpc, self.token),
                                                     "nghttpd-allow"))
        self.servers: dict[str, Proc] = {}  # ceiling row -> its server (CPU figures read its pid)
        for (row, name), start in zip(CEILINGS.items(), starts):
            try:
                self.procs.append(start(self.tmp, ports[name]))
                self.servers[row] = self.procs[-1]
            except RuntimeError as exc:
                self.missing[row] = str(exc)
        for name in (*FLOORS, *(n for row, n in CEILINGS.items() if row not in self.missing)):
            # a case must not start before them
            wait_until(lambda: socket.create_connection(("127.0.0.1", ports[name]), timeout=1).close() is None,
                       30, name)
        cfg = self.tmp / "envoy.yaml"
        cfg.write_text(yaml.safe_dump(envoy_config.build(ports, IDP, API, idp_ring.jwks())))
        self.envoy = Proc([envoy_binary() or "envoy", "-c", str(cfg), "--concurrency", "1", "-l", "error",
                           "--base-id", str(ports["admin"])], log=self.tmp / "envoy.log")
        self.procs.append(self.envoy)
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{ports['admin']}/ready").status_code == 200, 30, "envoy")
        self.url = {name: f"http://127.0.0.1:{port}/" for name, port in ports.items()}
        return self

    def sidecar(self, workers: int = 1, **env: str) -> Sidecar:
        """A sidecar with the stack's settings and `env`, stopped with the stack if not before."""
        svc = Sidecar({**self.env, **env}, args=["--workers", str(workers)], tmp=self.tmp)
        self.procs.append(svc)
        return svc.start()

    def redis_url(self) -> str:
        """One redis-server for every row that needs a shared store (started on first use): several
        workers cannot share the memory store, and serve refuses to start them on it."""
        if self._redis_url is None:
            port = free_port()
            self.procs.append(Proc(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"]))
            wait_until(lambda: redis.Redis(port=port).ping(), 10, "redis")
            self._redis_url = f"redis://127.0.0.1:{port}/0"
        return self._redis_url

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
