from __future__ import annotations

import httpx
import jwt


def test_discovery_documents_and_jwks_verify_our_tokens(svc):
    meta = httpx.get(svc.http + "/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == "http://127.0.0.1:8080"
    assert meta["token_endpoint"].endswith("/oauth/token")
    assert "urn:ietf:params:oauth:grant-type:jwt-bearer" in meta["grant_types_supported"]
    oidc = httpx.get(svc.http + "/.well-known/openid-configuration").json()
    assert oidc["jwks_uri"] == meta["jwks_uri"]
    app = svc.admin.app(grant_types=("client_credentials",))
    token = httpx.post(svc.http + "/oauth/token", auth=(app.client_id, app.client_secret),
                       data={"grant_type": "client_credentials"}).json()["access_token"]
    jwks = jwt.PyJWKSet.from_dict(httpx.get(svc.http + "/.well-known/jwks.json").json())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    claims = jwt.decode(token, key.key, algorithms=[key.algorithm_name], audience="http://127.0.0.1:8080")
    assert claims["client_id"] == app.client_id


def test_openapi_lists_token_and_admin_endpoints(svc):
    doc = httpx.get(svc.http + "/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path in ("/oauth/token", "/oauth/revoke", "/oauth/introspect", "/admin/tenants",
                 "/admin/service-users/{id}/keys"):
        assert path in doc["paths"]


def test_token_metrics(svc):
    app = svc.admin.app(grant_types=("client_credentials",))
    httpx.post(svc.http + "/oauth/token", auth=(app.client_id, app.client_secret),
               data={"grant_type": "client_credentials"})
    text = httpx.get(svc.http + "/metrics").text
    assert f'auth_sidecar_tokens_issued_total{{client_id="{app.client_id}",grant_type="client_credentials"}} 1.0' in text
    assert "auth_sidecar_token_failures_total" in text
    assert 'auth_sidecar_store_seconds_count{op="login_state"}' in text
