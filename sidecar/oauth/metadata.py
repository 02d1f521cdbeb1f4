"""Discovery: RFC 8414 server metadata and the OpenID configuration document."""

from __future__ import annotations

from typing import Any

from sidecar.oauth.grants import GRANTS

# RFC 8705 §2: the certificate methods work through a TLS-terminating proxy (trusted_proxy_hops)
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "tls_client_auth", "self_signed_tls_client_auth"]


def server_metadata(issuer: str, algs: list[str], dpop_algs: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        **({"dpop_signing_alg_values_supported": list(dpop_algs)} if dpop_algs else {}),  # RFC 9449 §5.1
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": sorted(GRANTS),
        "response_types_supported": ["token"],
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "tls_client_certificate_bound_access_tokens": True,  # RFC 8705 §3.3
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "EdDSA"],
        "scopes_supported": ["offline_access"],
    }


def openid_configuration(issuer: str, algs: list[str], dpop_algs: tuple[str, ...] = ()) -> dict[str, Any]:
    return {**server_metadata(issuer, algs, dpop_algs), "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": algs,
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "tenant",
                                 "org_id", "project_ids"]}
