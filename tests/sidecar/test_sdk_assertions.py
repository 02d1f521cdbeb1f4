"""Service-user assertions built like seed 002's frontier-go SDK (`utils.BuildToken`): RS256,
`iss: "//frontier-go-sdk"`, `sub` = the service user, 12 h `exp`, `jti`, `kid` in header and
payload, no `aud`. RFC 7523-strict by default (400 naming what is wrong); accepted once the
operator sets `jwt_bearer.*`, and the token it gives works through the real Envoy."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
import pytest

from tests.e2e.conftest import stack_around, stop_stack
from tests.support.admin_sidecar import admin_sidecar
from tests.support.oauth import Admin

ISSUER = "http://127.0.0.1:8080"  # the default issuer the test sidecars keep
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def service_user_key(admin: Admin) -> dict:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    admin.post("/admin/tenants", {"id": tenant, "name": tenant})
    su = admin.post(f"/admin/tenants/{tenant}/service-users",
                    {"name": "billing", "org_id": "org-9", "project_ids": ["p7"], "scopes": ["jobs"]})
    return admin.post(f"/admin/service-users/{su['id']}/keys", {"title": "sdk", "alg": "RS256"})


def sdk_assertion(key: dict, header_kid: bool = True, **override) -> str:
    """frontier-go utils.BuildToken(rsaKey, "//frontier-go-sdk", principal, 12*time.Hour, nil)."""
    now = int(time.time())
    claims = {"iat": now, "nbf": now, "exp": now + 12 * 3600, "iss": "//frontier-go-sdk", "jti": str(uuid.uuid4()),
              "sub": key["principal_id"], "kid": key["kid"], **override}
    headers = {"kid": key["kid"], "typ": "JWT"} if header_kid else {"typ": "JWT"}
    return jwt.encode(claims, key["private_key"], algorithm="RS256", headers=headers)


def exchange(base: str, assertion: str) -> httpx.Response:
    # as the seed sends it: the assertion as a Bearer header, the grant type in the body
    return httpx.post(base + "/oauth/token", headers={"authorization": f"Bearer {assertion}",
                                                      "accept": "application/json"},
                      data={"grant_type": GRANT})


def test_defaults_refuse_the_sdk_assertion_naming_aud(svc):
    key = service_user_key(svc.admin)
    r = exchange(svc.http, sdk_assertion(key))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert r.json()["error_description"] == "assertion has no aud: it must be the issuer or the token endpoint"
    r = exchange(svc.http, sdk_assertion(key, aud=ISSUER))
    assert r.status_code == 400 and r.json()["error_description"] == "assertion iss must be the service user id"
    r = exchange(svc.http, sdk_assertion(key, iss=key["principal_id"], aud=ISSUER + "/oauth/token"))
    assert r.status_code == 400 and "at most 3600 seconds" in r.json()["error_description"]
    ok = exchange(svc.http, sdk_assertion(key, iss=key["principal_id"], aud=ISSUER,
                                          exp=int(time.time()) + 600))
    assert ok.status_code == 200, ok.text


@pytest.fixture(scope="module")
def relaxed(tmp_path_factory, envoy_path):
    tmp = tmp_path_factory.mktemp("sdk")
    stack = stack_around(admin_sidecar(tmp, {"AUTH_SIDECAR_JWT_BEARER__REQUIRE_AUDIENCE": "false",
                                             "AUTH_SIDECAR_JWT_BEARER__REQUIRE_ISS_IS_SUB": "false",
                                             "AUTH_SIDECAR_JWT_BEARER__MAX_LIFETIME": "43200"}), tmp)
    stack.admin = stack.sidecar.admin
    yield stack
    stop_stack(stack)


@pytest.mark.parametrize("header_kid", [True, False], ids=["kid-in-header", "kid-in-payload-only"])
def test_options_accept_the_sdk_assertion_and_the_token_passes_envoy(relaxed, header_kid):
    key = service_user_key(relaxed.admin)
    r = exchange(relaxed.sidecar.http, sdk_assertion(key, header_kid=header_kid))
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == key["principal_id"]
    for url in (relaxed.grpc_url, relaxed.http_url):
        through = httpx.get(url + "/orders", headers={"authorization": f"Bearer {token}"})
        assert through.status_code == 200, (url, through.text)
        assert through.json()["headers"]["x-user-id"] == [key["principal_id"]]
        assert through.json()["headers"]["x-org-id"] == ["org-9"]


def test_options_still_check_what_the_sdk_sets(relaxed):
    key = service_user_key(relaxed.admin)
    base = relaxed.sidecar.http
    wrong_sub = exchange(base, sdk_assertion(key, sub="someone-else"))
    assert wrong_sub.status_code == 400 and "sub" in wrong_sub.json()["error_description"]
    wrong_aud = exchange(base, sdk_assertion(key, aud="https://elsewhere.example"))
    assert wrong_aud.status_code == 400 and "aud" in wrong_aud.json()["error_description"]
    too_long = exchange(base, sdk_assertion(key, exp=int(time.time()) + 13 * 3600))
    assert too_long.status_code == 400 and "at most 43200 seconds" in too_long.json()["error_description"]
    assertion = sdk_assertion(key)
    assert exchange(base, assertion).status_code == 200
    replay = exchange(base, assertion)
    assert replay.status_code == 400 and "jti" in replay.json()["error_description"]
    no_kid = exchange(base, sdk_assertion(key, header_kid=False, kid=None))
    assert no_kid.status_code == 400 and no_kid.json()["error"] == "invalid_grant"
