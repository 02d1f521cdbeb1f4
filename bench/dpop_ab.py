"""In-process A/B of a cached bearer Check and of a DPoP-bound cached Check with a fresh proof
(`AuthorizationService.check_message`, the h2 gRPC face's entry) between two source trees, and
what one ES256 verification, the floor of a DPoP Check, costs on this CPU.

Each tree runs in its own long-lived process (the modules share names), taking turns: rounds
alternate A, B, A, B ..., so both see the same machine; each round is timed in the process's
CPU time (a shared machine's neighbours do not count), the figure is each side's median.

    git worktree add /tmp/main-tree main
    python -m bench.dpop_ab /tmp/main-tree .
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CALLS = 20_000


def _worker(kind: str) -> None:
    """Runs in a tree's root (cwd first on sys.path): answers 'go' with ns per Check."""
    import asyncio

    from envoy.service.auth.v3 import external_auth_pb2 as pb

    from authz.keys import KeyRing
    from config import load_settings
    from sidecar.container import build

    ring = KeyRing.ephemeral_key("ES256")
    c = build(load_settings(environ={}), ring)
    now = int(time.time())
    claims = {"iss": c.settings.issuer, "sub": "user-1", "aud": c.settings.issuer, "exp": now + 3600, "iat": now,
              "jti": "j-1", "client_id": "app", "scope": "read write", "tenant": "acme"}
    key = None
    if kind == "dpop":
        from requests_oauth2client import DPoPKey

        from authz.dpop import b64url_sha256
        key = DPoPKey.generate(alg="ES256")
        claims["cnf"] = {"jkt": key.dpop_jkt}
    token = ring.current.sign(claims, {"typ": "at+jwt"})

    def message(proof: str | None) -> bytes:
        req = pb.CheckRequest()
        http = req.attributes.request.http
        http.method, http.path, http.host, http.scheme = "GET", "/api/orders/42?x=1", "shop.local", "http"
        http.headers.update({"authorization": f"{'DPoP' if proof else 'Bearer'} {token}", ":authority": "shop.local",
                             ":method": "GET", ":path": "/api/orders/42?x=1", ":scheme": "http",
                             "user-agent": "curl/8.5.0", "accept": "*/*", "x-request-id": "8f9c2b9e"})
        if proof:
            http.headers["dpop"] = proof
        return req.SerializeToString()

    def proofs(n: int) -> list[bytes]:
        ath = b64url_sha256(token)
        return [message(str(key.proof(htm="GET", htu="http://shop.local/api/orders/42", ath=ath))) for _ in range(n)]

    service = c.authz_service
    first = service.check_message(message(None) if key is None else proofs(1)[0])
    if not isinstance(first, bytes):
        first = asyncio.run(first)
    calls = CALLS if key is None else CALLS // 20
    for line in sys.stdin:
        messages = [message(None)] * calls if key is None else proofs(calls)
        check = service.check_message
        started = time.process_time_ns()  # CPU time: a neighbour taking the core does not count
        for m in messages:
            answer = check(m)
        elapsed = time.process_time_ns() - started
        assert type(answer) is bytes and b"dpop" not in answer.lower()  # allowed, answered now
        print(json.dumps(elapsed / calls), flush=True)


def engine_ab(old: str, rounds: int = 15, calls: int = 50_000) -> tuple[float, float]:
    """The engine's `_decide_now` of the old tree against this tree's, in one process, on the
    same engine and request (the only function a bearer cache hit runs that the DPoP step
    changed), alternating: ns per `check_now`, old and new."""
    import importlib.util

    from authz.engine import Engine
    from authz.keys import KeyRing
    from authz.request import AuthRequest
    from config import load_settings
    from sidecar.container import build

    spec = importlib.util.spec_from_file_location("old_engine", Path(old) / "authz" / "engine.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_engine"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    ring = KeyRing.ephemeral_key("ES256")
    engine = build(load_settings(environ={}), ring).engine
    now = int(time.time())
    token = ring.current.sign({"iss": engine.verifier.issuers and next(iter(engine.verifier.issuers)), "sub": "u",
                               "aud": next(iter(engine.verifier.issuers)), "exp": now + 3600, "iat": now, "jti": "j",
                               "scope": "read"}, {"typ": "at+jwt"})
    req = AuthRequest({"authorization": f"Bearer {token}", "accept": "*/*"}, "/api/orders/42", "GET")
    import asyncio

    asyncio.run(engine.check(req))
    new_fn, old_fn = Engine._decide_now, module.Engine._decide_now
    times: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(rounds):
        for name, fn in (("old", old_fn), ("new", new_fn)):
            Engine._decide_now = fn
            check = engine.check_now
            started = time.process_time_ns()
            for _ in range(calls):
                check(req)
            times[name].append((time.process_time_ns() - started) / calls)
            assert check(req)[0].allowed
    Engine._decide_now = new_fn
    return statistics.median(times["old"]), statistics.median(times["new"])


def _es256_verify_us(rounds: int = 5, n: int = 2000) -> float:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    public, message, scheme = key.public_key(), b"x" * 400, ec.ECDSA(hashes.SHA256())
    signature = key.sign(message, scheme)
    best = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(n):
            public.verify(signature, message, scheme)
        best.append((time.process_time() - started) / n * 1e6)
    return statistics.median(best)


def main(old: str, new: str, pairs: int = 6, rounds: int = 7) -> None:
    """`pairs` fresh pairs of processes (two processes of one tree differ by a few % on their
    own: memory layout, hash seeds), `rounds` alternating rounds each."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def start(root: str, kind: str) -> subprocess.Popen:
        # this file runs as a script in the tree's root: that tree's code is imported
        return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", kind], cwd=root,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def take_turns(sides: dict[str, subprocess.Popen], times: dict[str, list[float]], n: int) -> None:
        try:
            for _ in range(n):
                for name, proc in sides.items():
                    proc.stdin.write("go\n")
                    proc.stdin.flush()
                    times.setdefault(name, []).append(json.loads(proc.stdout.readline()))
        finally:
            for proc in sides.values():
                proc.stdin.close()
                proc.wait()

    times: dict[str, list[float]] = {}
    ratios = []
    for pair in range(pairs):
        mine: dict[str, list[float]] = {}
        order = [("old", old), ("new", new)] if pair % 2 == 0 else [("new", new), ("old", old)]
        take_turns({name: start(root, "bearer") for name, root in order}, mine, rounds)
        ratios.append(statistics.median(mine["new"]) / statistics.median(mine["old"]))
        for name, values in mine.items():
            times.setdefault(name, []).extend(values)
    dpop_ratios = []
    for pair in range(pairs):
        mine = {}
        order = [("dpop_old", old), ("dpop_new", new)] if pair % 2 == 0 else [("dpop_new", new), ("dpop_old", old)]
        take_turns({name: start(root, "dpop") for name, root in order}, mine, rounds)
        dpop_ratios.append(statistics.median(mine["dpop_new"]) / statistics.median(mine["dpop_old"]))
        for name, values in mine.items():
            times.setdefault(name, []).extend(values)
    med = {name: statistics.median(values) for name, values in times.items()}
    print(f"bearer cache hit, check_message: old {med['old']:.0f} ns, new {med['new']:.0f} ns "
          f"({(med['new'] / med['old'] - 1) * 100:+.1f} %; per pair of processes "
          f"{', '.join(f'{(r - 1) * 100:+.1f}' for r in ratios)} %), {pairs} pairs x {rounds} rounds of {CALLS}")
    print(f"DPoP-bound cache hit (fresh ES256 proof each): old {med['dpop_old'] / 1000:.1f} µs, new "
          f"{med['dpop_new'] / 1000:.1f} µs ({(med['dpop_new'] / med['dpop_old'] - 1) * 100:+.1f} %; per pair "
          f"{', '.join(f'{(r - 1) * 100:+.1f}' for r in dpop_ratios)} %) = {med['new'] / med['dpop_new']:.3f}x "
          f"the bearer hit's rate in-process")
    print(f"one ES256 verification (cryptography): {_es256_verify_us():.1f} µs")
    old_ns, new_ns = engine_ab(old)
    print(f"engine only (Engine.check_now, bearer hit, old and new _decide_now in one process): old {old_ns:.0f} ns, "
          f"new {new_ns:.0f} ns ({(new_ns / old_ns - 1) * 100:+.1f} %)")


if __name__ == "__main__":
    if sys.argv[1] == "--worker":
        sys.path[0] = os.getcwd()  # the tree under test, not this file's folder
        _worker(sys.argv[2])
    else:
        main(*sys.argv[1:3])
