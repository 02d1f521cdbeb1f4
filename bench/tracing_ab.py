"""In-process interleaved A/B of tracing's cost on a cached Check, through the real adapters
(gRPC: `AuthorizationService.check_message`, what the h2 transport calls; HTTP mode:
`HttpCheckApp.answer_now`, what the inline HTTP/1.1 path calls), CPU time of this thread.

Arms, each its own container over the same key ring and token:
- before: the adapters over the engine, wired by hand as the composition root did before
  tracing existed;
- off:    `build()` with tracing off (the default);
- on:     tracing on, every trace sampled, spans to a batch processor whose exporter drops
          them (the export thread's own work is not counted: it runs beside the loop);
- on 0%:  tracing on, sample_ratio 0 and no caller traceparent (spans made but not recorded).

    python -m bench.tracing_ab [rounds] [n]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from envoy.service.auth.v3 import external_auth_pb2 as pb

from authz.engine import Engine
from authz.keys import KeyRing
from config import load_settings
from sidecar import container as composition
from transport.grpc.authorization import AuthorizationService
from transport.http.check import HttpCheckApp

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
DATE = b"date: Sat, 28 Nov 2026 10:00:00 GMT\r\n"


class DropExporter:
    """A SpanExporter that drops every batch (the SDK's processors only call these)."""

    def export(self, spans):
        from opentelemetry.sdk.trace.export import SpanExportResult
        return SpanExportResult.SUCCESS

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def check_message(token: str, traced: bool) -> bytes:
    req = pb.CheckRequest()
    http = req.attributes.request.http
    http.method, http.path = "GET", "/api/orders/42"
    http.headers.update({"authorization": f"Bearer {token}", ":authority": "shop.local", ":method": "GET",
                         ":path": "/api/orders/42", "user-agent": "curl/8.5.0", "accept": "*/*",
                         "x-request-id": "8f9c2b9e-1f5e-4b8a-9b55-2a1f0c3d4e5f"})
    if traced:
        http.headers["traceparent"] = TRACEPARENT
    return req.SerializeToString()


async def arms(ring: KeyRing):
    off = composition.build(load_settings(environ={}), ring)
    before = composition.build(load_settings(environ={}), ring)
    assert type(off.authz_service.engine) is Engine and type(off.http_check.engine) is Engine
    before.authz_service, before.http_check = AuthorizationService(before.engine), HttpCheckApp(before.engine)
    on = composition.build(load_settings(environ={"AUTH_SIDECAR_TRACING__ENABLED": "true"}), ring,
                           span_exporter=DropExporter())
    sampled_out = composition.build(load_settings(environ={"AUTH_SIDECAR_TRACING__ENABLED": "true",
                                                           "AUTH_SIDECAR_TRACING__SAMPLE_RATIO": "0"}), ring,
                                    span_exporter=DropExporter())
    found = {"before": (before, False), "off": (off, False), "on": (on, True), "on 0%": (sampled_out, False)}
    for c, _ in found.values():
        await c.start()
    return found


async def main(rounds: int = 40, n: int = 2000) -> None:
    ring = KeyRing.ephemeral_key("ES256")
    found = await arms(ring)
    any_c = found["off"][0]
    token = any_c.issuer.access_token(subject="u-1", client_id="bench", tenant="acme", scope=["read"], ttl=3600,
                                      org_id="org-1", project_ids=["p1"]).token
    calls = {}
    for name, (c, traced) in found.items():
        message = check_message(token, traced)
        headers = [(b"authorization", f"Bearer {token}".encode()), (b"user-agent", b"curl/8.5.0"),
                   (b"accept", b"*/*")] + ([(b"traceparent", TRACEPARENT.encode())] if traced else [])
        first = c.authz_service.check_message(message)
        if not isinstance(first, bytes):
            await first  # the miss: cached from here on, in this arm's own cache
        assert isinstance(c.authz_service.check_message(message), bytes)
        assert isinstance(c.http_check.answer_now(b"GET", "/api/orders/42", headers, DATE), bytes)
        calls[name] = (lambda s=c.authz_service, m=message: s.check_message(m),
                       lambda h=c.http_check, hs=headers: h.answer_now(b"GET", "/api/orders/42", hs, DATE))
    names = list(calls)
    for mode, index in (("gRPC", 0), ("HTTP", 1)):
        results: dict[str, list[float]] = {name: [] for name in names}
        for r in range(rounds):
            for name in (names if r % 2 else names[::-1]):  # interleaved, order alternating
                call = calls[name][index]
                start = time.thread_time()
                for _ in range(n):
                    call()
                results[name].append((time.thread_time() - start) / n * 1e6)
        base = results["before"]
        line = [f"{mode} cached Check, µs (median of {rounds} rounds of {n}):"]
        for name in names:
            paired = statistics.median(b / a for a, b in zip(base, results[name]))
            line.append(f"{name} {statistics.median(results[name]):.2f} ({paired:.3f}× before)")
        print("  ".join(line))
    for c, _ in found.values():
        await c.close()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(*args))
