"""The ratios the targets are set on, each taken within one run."""

from __future__ import annotations

import statistics

TARGETS = {
    "http_hit / jwt_authn (>= 0.85)": ("sidecar_http_hit", "envoy_jwt_authn"),
    "grpc_hit / bare grpc.aio floor (>= 0.85)": ("sidecar_grpc_hit", "floor_grpc"),
    "http_hit / bare ASGI floor": ("sidecar_http_hit", "floor_http"),
    "grpc_miss / grpc_hit (>= 0.5)": ("sidecar_grpc_miss", "sidecar_grpc_hit"),
    "http_miss / http_hit (>= 0.5)": ("sidecar_http_miss", "sidecar_http_hit"),
    "grpc_dpop / grpc_hit (>= 0.6)": ("sidecar_grpc_dpop", "sidecar_grpc_hit"),
    "http_dpop / http_hit (>= 0.6)": ("sidecar_http_dpop", "sidecar_http_hit"),
    "h2load workers2 / workers1 (>= 1.6)": ("h2load_grpc_workers2", "h2load_grpc_workers1"),
    "h2load: sidecar CPU per request, workers2 / workers1": ("h2load_grpc_workers2_cpu", "h2load_grpc_workers1_cpu"),
    "password / argon2 alone (>= 0.9)": ("token_password", "argon2_alone"),
    "argon2's share of a login's CPU": ("argon2_cpu", "token_password_cpu"),
    # the rivals: a constant C server per mode (the ceiling of any ext_authz server) and
    # Envoy's jwt_authn with its JWT cache
    "grpc_hit / ceiling_grpc (nghttpd) (>= 0.95)": ("sidecar_grpc_hit", "ceiling_grpc"),
    "grpc_miss / ceiling_grpc (nghttpd)": ("sidecar_grpc_miss", "ceiling_grpc"),
    # the same ceiling serving the sidecar's own allow bytes: Envoy applies the same answer
    "grpc_hit / ceiling_grpc_allow (nghttpd, same answer) (>= 0.95)": ("sidecar_grpc_hit", "ceiling_grpc_allow"),
    # `--workers 2`, as on two cores: Envoy's Checks spread over both workers
    "grpc_hit_workers2 / ceiling_grpc (nghttpd) (>= 0.95)": ("sidecar_grpc_hit_workers2", "ceiling_grpc"),
    "grpc_hit_workers2 / ceiling_grpc_allow (nghttpd, same answer)": ("sidecar_grpc_hit_workers2",
                                                                      "ceiling_grpc_allow"),
    "http_hit / ceiling_http (nginx) (>= 0.95)": ("sidecar_http_hit", "ceiling_http"),
    "http_miss / ceiling_http (nginx)": ("sidecar_http_miss", "ceiling_http"),
    "grpc_hit / jwt_authn_cached": ("sidecar_grpc_hit", "envoy_jwt_authn_cached"),
    "grpc_miss / jwt_authn_cached": ("sidecar_grpc_miss", "envoy_jwt_authn_cached"),
    "http_hit / jwt_authn_cached": ("sidecar_http_hit", "envoy_jwt_authn_cached"),
    "http_miss / jwt_authn_cached": ("sidecar_http_miss", "envoy_jwt_authn_cached"),
    "jwt_authn_cached / jwt_authn": ("envoy_jwt_authn_cached", "envoy_jwt_authn"),
    # what the ext_authz hop costs Envoy itself, whatever answers it
    "ceiling_grpc / envoy_noauth": ("ceiling_grpc", "envoy_noauth"),
    "ceiling_grpc_allow / ceiling_grpc": ("ceiling_grpc_allow", "ceiling_grpc"),
    "ceiling_http / envoy_noauth": ("ceiling_http", "envoy_noauth"),
}


def ratios(r: dict) -> dict[str, float | None]:
    def v(k: str) -> float | None:
        return (r.get(k) or {}).get("value")

    def paired(a: str, b: str) -> list | None:
        """Both rows' per-round samples, when both ran in the same --repeat rounds."""
        sa, sb = (r.get(a) or {}).get("samples"), (r.get(b) or {}).get("samples")
        return list(zip(sa, sb)) if sa and sb and len(sa) == len(sb) else None

    def div(a: str, b: str) -> float | None:
        # rows of one round ran back to back: the median of the per-round ratios cancels drifts
        # of a shared machine that a ratio of the two medians keeps
        if pairs := paired(a, b):
            return round(statistics.median(x / y for x, y in pairs if x and y), 3)
        x, y = v(a), v(b)
        return round(x / y, 3) if x and y else None

    out = {name: div(a, b) for name, (a, b) in TARGETS.items()}
    for mode in ("grpc", "http", "floor_grpc", "floor_http"):
        a, b = r.get(f"latency_{mode}") or {}, r.get("latency_noauth") or {}
        if a.get("p99_ms") is not None and b.get("p99_ms") is not None:
            target = "" if mode.startswith("floor") else ", <= 1"
            pairs = paired(f"latency_{mode}", "latency_noauth")
            for i, name in ((1, "p99"), (0, "p50")):
                if pairs:
                    added = statistics.median(x[i] - y[i] for x, y in pairs)
                else:
                    added = a[f"{name}_ms"] - b[f"{name}_ms"]
                out[f"added {name} at 1000 req/s, {mode} (ms{target if name == 'p99' else ''})"] = round(added, 3)
    return out
