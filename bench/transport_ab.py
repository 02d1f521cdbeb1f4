"""In-process A/B of the gRPC port's HTTP/2 code: one connection's data_received handling a
cached Check as Envoy sends it (one HEADERS + one DATA per read, and two Checks per read),
old code (a checkout of an earlier commit) against this tree's, interleaved in rounds.

    git worktree add /tmp/h2-old 7acffa3
    python -m bench.transport_ab /tmp/h2-old
"""

from __future__ import annotations

import asyncio
import importlib.util
import statistics
import struct
import sys
import time
from pathlib import Path

from envoy.service.auth.v3 import external_auth_pb2 as pb
from hpack import Encoder

from config.settings import Settings
from sidecar import container as composition
from transport.grpc.unary import GrpcH2Server
from transport.h2.connection import Connection
from transport.h2 import frames as w

SERVICE_PATH = "/envoy.service.auth.v3.Authorization/Check"
# what Envoy's gRPC client sends with every Check (envoy_grpc cluster "ext_authz", 2 s timeout)
ENVOY_HEADERS = [(":method", "POST"), (":scheme", "http"), (":path", SERVICE_PATH), (":authority", "ext_authz"),
                 ("content-type", "application/grpc"), ("te", "trailers"), ("grpc-timeout", "2000m"),
                 ("x-envoy-internal", "true"), ("x-forwarded-for", "10.0.0.5"),
                 ("x-envoy-expected-rq-timeout-ms", "2000")]


def load_old(root: Path):
    """The old transport's modules, loaded under their old names (authz.h2_wire, authz.grpc_h2)."""
    modules = {}
    for name in ("h2_wire", "grpc_h2"):
        spec = importlib.util.spec_from_file_location(f"authz.{name}", root / "authz" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[f"authz.{name}"] = module
        spec.loader.exec_module(module)
        modules[name] = module
    return modules["grpc_h2"]


def check_request(token: str) -> bytes:
    req = pb.CheckRequest()
    http = req.attributes.request.http
    http.method, http.path, http.host, http.scheme, http.protocol = "GET", "/api/orders/42?x=1", "shop.local", "http", "HTTP/1.1"
    http.id = "8f9c2b9e-1f5e-4b8a-9b55-2a1f0c3d4e5f"
    for k, v in {"authorization": f"Bearer {token}", ":authority": "shop.local", ":method": "GET",
                 ":path": "/api/orders/42?x=1", ":scheme": "http", "user-agent": "curl/8.5.0", "accept": "*/*",
                 "x-forwarded-proto": "http", "x-request-id": http.id}.items():
        http.headers[k] = v
    req.attributes.source.address.socket_address.address = "10.0.0.5"
    req.attributes.source.address.socket_address.port_value = 51234
    req.attributes.destination.address.socket_address.address = "10.0.0.9"
    req.attributes.destination.address.socket_address.port_value = 8000
    req.attributes.context_extensions["required_scopes"] = "read"
    raw = req.SerializeToString()
    return b"\0" + struct.pack(">I", len(raw)) + raw


class NullTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def write(self, data) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def reads(message: bytes, n: int, per_read: int) -> list[bytes]:
    """n Checks on streams 1, 3, 5, … as Envoy writes them, `per_read` to a read."""
    encoder, out, chunk = Encoder(), [], b""
    for i in range(n):
        sid = 2 * i + 1
        block = encoder.encode(ENVOY_HEADERS)
        chunk += w.frame(w.HEADERS, w.END_HEADERS, sid, block) + w.frame(w.DATA, w.END_STREAM, sid, message)
        if (i + 1) % per_read == 0:
            out.append(chunk)
            chunk = b""
    return out


async def main(old_root: Path, rounds: int = 60, n: int = 500) -> None:
    old = load_old(old_root)
    c = composition.build(Settings())
    await c.start()
    token = c.issuer.access_token(subject="u-1", client_id="bench", tenant="acme", scope=["read"], ttl=3600,
                                  org_id="org-1", project_ids=["p1"]).token
    message = check_request(token)
    check = c.authz_service.check_message
    first = check(message[5:])
    if not isinstance(first, bytes):
        await first  # the miss: the token is cached from here on
    assert isinstance(check(message[5:]), bytes)
    fixed = check(message[5:])
    for label, method in (("cached Check", check), ("fixed answer (transport only)", lambda m: fixed)):
        methods = {SERVICE_PATH: method}
        servers = {"old": old.GrpcH2Server(methods), "new": GrpcH2Server(methods)}
        run(label, servers, {"old": old._Connection, "new": Connection}, message, rounds, n)
    await c.close()


def run(label, servers, connection_class, message, rounds, n) -> None:
    # Envoy opens a large connection window at once (initial_connection_window_size)
    opening = w.PREFACE + w.settings({w.SETTINGS_INITIAL_WINDOW_SIZE: 268435456}) + w.window_update(0, 268435456)
    results: dict[tuple[str, int], list[float]] = {}
    for per_read in (1, 2):
        chunks = reads(message, n, per_read)
        for _ in range(rounds):
            for name in ("old", "new") if _ % 2 else ("new", "old"):
                conn = connection_class[name](servers[name])
                transport = NullTransport()
                conn.connection_made(transport)
                conn.data_received(opening)
                # CPU time of this thread: other processes sharing the cores do not count
                start = time.thread_time()
                for chunk in chunks:
                    conn.data_received(chunk)
                elapsed = time.thread_time() - start
                assert transport.written > n * 50, (name, transport.written)
                results.setdefault((name, per_read), []).append(elapsed / n * 1e6)
    for per_read in (1, 2):
        old, new = results[("old", per_read)], results[("new", per_read)]
        o, nw = statistics.median(old), statistics.median(new)
        paired = statistics.median(b / a for a, b in zip(old, new))  # each round's pair: drift cancels
        print(f"{label}, {per_read} per read: old {o:.2f} µs, new {nw:.2f} µs, new/old {paired:.3f} "
              f"(median of {rounds} interleaved pairs of rounds of {n})")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/h2-old")))
