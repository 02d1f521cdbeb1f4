"""One Envoy (--concurrency 1) with a listener per case, each answering with a direct response."""

from __future__ import annotations

import json


# the identity headers the sidecar sets or strips (HeaderNames' defaults), registered as Envoy
# inline request headers, as examples/envoy.yaml does: ~2.5 % fewer Envoy instructions per
# allowed request (`python -m bench.callgrind --no-inline-headers` counts the difference)
IDENTITY_HEADERS = ("x-tenant-id", "x-org-id", "x-project-id", "x-user-id", "x-client-id", "x-scopes", "x-actor-id")


def inline_headers(names: tuple[str, ...] = IDENTITY_HEADERS) -> list[dict]:
    return [{"inline_header_name": name, "inline_header_type": "REQUEST_HEADER"} for name in names]


def _hcm(name: str, filters: list[dict], per_route: dict | None = None) -> dict:
    route = {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}
    if per_route:
        route["typed_per_filter_config"] = per_route
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": name,
        "route_config": {"virtual_hosts": [{"name": name, "domains": ["*"], "routes": [route]}]},
        "http_filters": [*filters, {"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}


def _ext_authz_grpc(cluster: str) -> dict:
    return {"name": "envoy.filters.http.ext_authz", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
        "transport_api_version": "V3", "failure_mode_allow": False,
        "grpc_service": {"envoy_grpc": {"cluster_name": cluster}, "timeout": "2s"}}}


def _ext_authz_http(cluster: str, port: int) -> dict:
    return {"name": "envoy.filters.http.ext_authz", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
        "transport_api_version": "V3", "failure_mode_allow": False,
        "allowed_headers": {"patterns": [{"exact": "x-auth-token"}, {"exact": "x-project"},
                                         {"exact": "dpop"}]},
        "http_service": {"server_uri": {"uri": f"http://127.0.0.1:{port}", "cluster": cluster, "timeout": "2s"},
                         "path_prefix": "/ext_authz",
                         "authorization_response": {"allowed_upstream_headers": {"patterns": [
                             {"exact": h} for h in ("x-tenant-id", "x-org-id", "x-project-id", "x-user-id",
                                                    "x-client-id", "x-scopes")]}}}}}


def _jwt_authn(issuer: str, audience: str, jwks: dict, cached: bool = False) -> dict:
    provider = {"issuer": issuer, "audiences": [audience], "local_jwks": {"inline_string": json.dumps(jwks)},
                "forward": True, "claim_to_headers": [{"header_name": "x-tenant-id", "claim_name": "tenant"}]}
    if cached:  # verified tokens remembered by Envoy (per worker thread) until their exp
        provider["jwt_cache_config"] = {"jwt_cache_size": 1000}
    return {"name": "envoy.filters.http.jwt_authn", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": {"own": provider},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "own"}}]}}


def _cluster(name: str, port: int, http2: bool) -> dict:
    c = {"name": name, "type": "STATIC", "connect_timeout": "1s", "load_assignment": {
        "cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
            "address": "127.0.0.1", "port_value": port}}}}]}]}}
    if http2:
        c["typed_extension_protocol_options"] = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}}}}
    return c


def build(ports: dict[str, int], issuer: str, audience: str, jwks: dict) -> dict:
    scopes = {"envoy.filters.http.ext_authz": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
        "check_settings": {"context_extensions": {"required_scopes": "read"}}}}
    listeners = {
        "noauth": _hcm("noauth", []),
        "jwt_authn": _hcm("jwt", [_jwt_authn(issuer, audience, jwks)]),
        "jwt_authn_cached": _hcm("jwtc", [_jwt_authn(issuer, audience, jwks, cached=True)]),
        "sidecar_grpc": _hcm("sgrpc", [_ext_authz_grpc("sidecar_grpc")], scopes),
        "sidecar_http": _hcm("shttp", [_ext_authz_http("sidecar_http", ports["sidecar_http_port"])]),
        "floor_grpc": _hcm("fgrpc", [_ext_authz_grpc("floor_grpc")], scopes),
        "floor_http": _hcm("fhttp", [_ext_authz_http("floor_http", ports["floor_http_port"])]),
        "ceiling_grpc": _hcm("cgrpc", [_ext_authz_grpc("ceiling_grpc")], scopes),
        "ceiling_http": _hcm("chttp", [_ext_authz_http("ceiling_http", ports["ceiling_http_port"])]),
        "ceiling_grpc_allow": _hcm("cgrpca", [_ext_authz_grpc("ceiling_grpc_allow")], scopes),
    }
    clusters = [_cluster("sidecar_grpc", ports["sidecar_grpc_port"], True),
                _cluster("sidecar_http", ports["sidecar_http_port"], False),
                _cluster("floor_grpc", ports["floor_grpc_port"], True),
                _cluster("floor_http", ports["floor_http_port"], False),
                _cluster("ceiling_grpc", ports["ceiling_grpc_port"], True),
                _cluster("ceiling_http", ports["ceiling_http_port"], False),
                _cluster("ceiling_grpc_allow", ports["ceiling_grpc_allow_port"], True)]
    if "sidecar_grpc_w2_port" in ports:  # the two-worker sidecar, started only for its row
        listeners["sidecar_grpc_w2"] = _hcm("sgrpc2", [_ext_authz_grpc("sidecar_grpc_w2")], scopes)
        clusters.append(_cluster("sidecar_grpc_w2", ports["sidecar_grpc_w2_port"], True))
    if "compared_grpc_port" in ports:  # a sidecar of another checkout (bench/hop_cpu.py --compare)
        listeners["compared_grpc"] = _hcm("cmpgrpc", [_ext_authz_grpc("compared_grpc")], scopes)
        clusters.append(_cluster("compared_grpc", ports["compared_grpc_port"], True))
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": ports["admin"]}}},
        "inline_headers": inline_headers(),
        "static_resources": {
            "listeners": [{"name": name, "address": {"socket_address": {"address": "127.0.0.1",
                                                                         "port_value": ports[name]}},
                           "filter_chains": [{"filters": [hcm]}]} for name, hcm in listeners.items()],
            "clusters": clusters}}
