"""Requests/s of DPoP-protected Checks through Envoy (wrk, 32 connections, the sidecar's gRPC
and HTTP modes): a DPoP-bound token (cached after its first request) with a fresh proof on
every request, so every Check verifies one ES256 signature and records one jti (the worker's
memory). Compared with the bearer cache hit of the same run (`sidecar_grpc_hit`, ratio
>= 0.6). Proofs are signed before each timed run, one per request, and a pool too small fails
the row (a proof used twice is a 401, and wrk's non-2xx answers fail a row). Each row also
keeps the sidecar's CPU per request (`sidecar_cpu_us`) and the bearer hit's on the same
listener right after (`bearer_sidecar_cpu_us`): on a shared machine they move less than
requests/s do."""

from __future__ import annotations

import json
import statistics
import time
from typing import Callable

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from authz.dpop import b64url_sha256, jwk_thumbprint
from bench.payloads import wrk_script
from bench.procstat import cpu_seconds
from bench.recorder import Recorder
from bench.stack import API, IDP, Stack
from bench import loaders
from sidecar.oauth.issuer import TokenIssuer

ROWS = (("sidecar_grpc_dpop", "sidecar_grpc", "sidecar_grpc_hit"), ("sidecar_http_dpop", "sidecar_http",
                                                                     "sidecar_http_hit"))


class Prover:
    """A client's DPoP key and a token bound to it, signed by the stack's IdP."""

    def __init__(self, stack: Stack) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        issuer = TokenIssuer(stack.idp.ring, IDP, API)
        self.token = issuer.access_token(subject="dpop-bench", client_id="bench", tenant="acme",
                                         scope=["read", "write"], ttl=3600,
                                         extra={"cnf": {"jkt": jwk_thumbprint(self.jwk)}}).token
        self.ath = b64url_sha256(self.token)

    def proofs(self, htu: str, n: int) -> list[str]:
        now, header = int(time.time()), {"typ": "dpop+jwt", "jwk": self.jwk}
        return [jwt.encode({"jti": f"b{now}-{i}", "htm": "GET", "htu": htu, "iat": now, "ath": self.ath}, self.key,
                           algorithm="ES256", headers=header) for i in range(n)]


def measure_round(rec: Recorder, stack: Stack) -> None:
    """One round of the DPoP rows: called by the proxy case in each of its rounds, right after
    the bearer hits, so that drifts of the machine hit both alike."""
    if not any(rec.want(row) for row, _, _ in ROWS):
        return
    prover = getattr(stack, "dpop_prover", None) or Prover(stack)
    stack.dpop_prover = prover
    cpu: dict[str, list[float]] = getattr(stack, "dpop_cpu", {})
    stack.dpop_cpu = cpu
    for row, listener, hit in ROWS:
        if not rec.want(row):
            continue
        url = stack.url[listener]
        rec.measure(row, lambda d: dpop_rate(rec, stack, prover, row, url, hit, d))
        if rec.ok(row):  # the sidecar's CPU per request: DPoP's and the bearer hit's, less load-dependent
            cpu.setdefault(row, []).append(stack.dpop_last_cpu)
            _, bearer = sidecar_cpu(stack, rec.d, lambda: loaders.wrk(url, rec.d, headers=stack.auth))
            cpu.setdefault(row + "_bearer", []).append(bearer)
            rec.results[row]["sidecar_cpu_us"] = round(statistics.median(cpu[row]), 1)
            rec.results[row]["bearer_sidecar_cpu_us"] = round(statistics.median(cpu[row + "_bearer"]), 1)
            print(f"  {row + ' sidecar CPU':34s} {cpu[row][-1]:8.1f} µs/req (bearer hit "
                  f"{cpu[row + '_bearer'][-1]:.1f})", flush=True)


def sidecar_cpu(stack: Stack, seconds: float, run: Callable[[], float]) -> tuple[float, float]:
    """(requests/s, µs of the sidecar's CPU per request) of `run()`, a wrk run of `seconds`."""
    pids = stack.main.worker_pids()
    before = cpu_seconds(pids)
    rate = run()
    return rate, (cpu_seconds(pids) - before) / max(rate * max(int(seconds), 1), 1) * 1e6


def dpop_rate(rec: Recorder, stack: Stack, prover: Prover, row: str, url: str, hit: str, seconds: float) -> float:
    expected = (rec.results.get(hit) or {}).get("value") or 6000  # a pool for the bearer rate: more than enough
    n = int(expected * max(int(seconds), 1) * 1.3) + 500
    script = wrk_script(stack.tmp, row, prover.proofs(url, n),
                        f'wrk.format(nil, nil, {{["authorization"] = "DPoP {prover.token}", ["dpop"] = line}})')
    # the sidecar's CPU per request (kept for the timed run, the warm-up's is overwritten)
    rate, stack.dpop_last_cpu = sidecar_cpu(stack, seconds, lambda: loaders.wrk(url, seconds, script=script))
    if rate * max(int(seconds), 1) > n:
        raise RuntimeError(f"{row}: {rate:.0f} req/s used up the pool of {n} proofs")
    return rate
