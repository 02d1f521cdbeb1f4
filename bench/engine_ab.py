"""In-process interleaved A/B of a cached gRPC Check through `AuthorizationService.check_message`:
this tree's `authz/engine.py` against another checkout's, swapped on the same Engine instance
(the rest of the stack, message and cache entry are shared), in shuffled rounds; plus the
cost of certificate-bound tokens (RFC 8705) in this tree.

    git worktree add /tmp/engine-old main
    python -m bench.engine_ab /tmp/engine-old [--rounds 80] [--n 3000]

Only `authz/engine.py` is taken from the other checkout: an A/B of a change to that file.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import importlib.util
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

from envoy.service.auth.v3 import external_auth_pb2 as pb

from authz.engine import Engine
from config.settings import Settings
from harness.certificates import self_signed
from sidecar import container as composition


def check_request(token: str, certificate: str = "", xfcc: str = "") -> bytes:
    """A CheckRequest as Envoy sends it for `GET /api/orders/42` with `token`."""
    req = pb.CheckRequest()
    http = req.attributes.request.http
    http.method, http.path, http.host, http.scheme, http.protocol = "GET", "/api/orders/42?x=1", "shop.local", \
        "https", "HTTP/1.1"
    http.id = "8f9c2b9e-1f5e-4b8a-9b55-2a1f0c3d4e5f"
    for k, v in {"authorization": f"Bearer {token}", ":authority": "shop.local", ":method": "GET",
                 ":path": "/api/orders/42?x=1", ":scheme": "https", "user-agent": "curl/8.5.0", "accept": "*/*",
                 "x-forwarded-proto": "https", "x-request-id": http.id}.items():
        http.headers[k] = v
    if xfcc:
        http.headers["x-forwarded-client-cert"] = xfcc
    req.attributes.source.address.socket_address.address = "10.0.0.5"
    req.attributes.source.certificate = certificate
    return req.SerializeToString()


def other_engine(root: Path) -> type:
    spec = importlib.util.spec_from_file_location("engine_ab_other", root / "authz" / "engine.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being built
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.Engine


async def run(other: type, rounds: int, n: int) -> None:
    c = composition.build(Settings(trusted_proxy_hops=1))
    svc, engine = c.authz_service, c.engine

    def token(extra=None) -> str:
        return c.issuer.access_token(subject="u1", client_id="web", tenant="acme", scope=["read"], ttl=900,
                                     extra=extra).token

    pem, der = self_signed("client-a")
    x5t = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    bearer, bound = check_request(token()), token({"cnf": {"x5t#S256": x5t}})
    cases = {
        "other: bearer hit": (other, bearer),
        "this: bearer hit": (Engine, bearer),
        "this: bound, peer certificate": (Engine, check_request(bound, certificate=quote(pem, safe=""))),
        "this: bound, XFCC": (Engine, check_request(bound, xfcc=f"Hash={hashlib.sha256(der).hexdigest()}")),
    }
    for cls, message in cases.values():  # verified once: every timed Check is a cache hit
        engine.__class__ = cls
        first = svc.check_message(message)
        if not isinstance(first, bytes):
            await first
        assert pb.CheckResponse.FromString(svc.check_message(message)).status.code == 0
    samples: dict[str, list[float]] = {name: [] for name in cases}
    order, rng = list(cases.items()), random.Random(7)
    for _ in range(rounds):
        rng.shuffle(order)  # drift and neighbours hit every case alike
        for name, (cls, message) in order:
            engine.__class__ = cls
            started = time.perf_counter_ns()
            for _ in range(n):
                svc.check_message(message)
            samples[name].append((time.perf_counter_ns() - started) / n)
    engine.__class__ = Engine
    for name, values in samples.items():
        print(f"{name:32s} median {statistics.median(values) / 1000:6.2f} µs   min {min(values) / 1000:6.2f} µs")
    ratios = [a / b for a, b in zip(samples["this: bearer hit"], samples["other: bearer hit"])]
    print(f"bearer hit, this/other time: median of per-round ratios {statistics.median(ratios):.3f}, "
          f"min/min {min(samples['this: bearer hit']) / min(samples['other: bearer hit']):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", type=Path, help="the other checkout's root")
    parser.add_argument("--rounds", type=int, default=80)
    parser.add_argument("--n", type=int, default=3000, help="Checks per case per round")
    args = parser.parse_args()
    asyncio.run(run(other_engine(args.other), args.rounds, args.n))


if __name__ == "__main__":
    main()
