"""Every grant's success path and every RFC 6749 error, through HTTP, on both stores."""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt
import pytest

from tests.support.oauth import authz, login, refresh

GRANT_JWT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_password_grant_issues_access_and_refresh_tokens(svc):
    app = svc.admin.app()
    r = login(svc.http, app)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900 and body["refresh_token"]
    assert jwt.get_unverified_header(body["access_token"])["typ"] == "at+jwt"
    c = claims_of(body["access_token"])
    assert c["tenant"] == app.tenant and c["sub"] == app.user_id and c["client_id"] == app.client_id
    assert c["org_id"] == "org-1" and c["project_ids"] == ["p1"]
    assert {"iss", "aud", "exp", "iat", "jti", "scope"} <= set(c)
    ok = authz(svc.http, body["access_token"])
    assert ok.status_code == 200 and ok.headers["x-tenant-id"] == app.tenant


def test_password_grant_with_body_credentials_and_json(svc):
    app = svc.admin.app()
    form = httpx.post(svc.http + "/oauth/token", data={"grant_type": "password", "username": "alice",
                                                       "password": app.password, "client_id": app.client_id,
                                                       "client_secret": app.client_secret})
    assert form.status_code == 200
    js = httpx.post(svc.http + "/oauth/token", json={"grant_type": "password", "username": "alice",
                                                     "password": app.password, "client_id": app.client_id,
                                                     "client_secret": app.client_secret})
    assert js.status_code == 200


def test_basic_and_body_credentials_together_is_invalid_request(svc):
    app = svc.admin.app()
    r = httpx.post(svc.http + "/oauth/token", auth=(app.client_id, app.client_secret),
                   data={"grant_type": "password", "username": "alice", "password": app.password,
                         "client_secret": app.client_secret})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_wrong_password_and_unknown_user_look_the_same(svc):
    app = svc.admin.app()
    wrong = login(svc.http, app, password="nope nope")
    app.username = "nobody"
    unknown = login(svc.http, app)
    assert wrong.status_code == unknown.status_code == 400
    assert wrong.json() == unknown.json() == {"error": "invalid_grant",
                                              "error_description": "invalid username or password"}


def test_user_of_another_tenant_cannot_log_in(svc):
    a, b = svc.admin.app(), svc.admin.app()
    b.username = "alice"
    b.password = "wrong for b"
    # alice exists in tenant a; b's client only sees tenant b's alice, with her own password
    r = httpx.post(svc.http + "/oauth/token", auth=(b.client_id, b.client_secret),
                   data={"grant_type": "password", "username": "alice", "password": a.password + "x"})
    assert r.json()["error"] == "invalid_grant"


def test_bad_client_secret_is_401_with_basic_challenge(svc):
    app = svc.admin.app()
    r = httpx.post(svc.http + "/oauth/token", auth=(app.client_id, "wrong"),
                   data={"grant_type": "password", "username": "alice", "password": app.password})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert r.headers["www-authenticate"].startswith("Basic")
    body = httpx.post(svc.http + "/oauth/token", data={"grant_type": "client_credentials", "client_id": "nope",
                                                       "client_secret": "x"})
    assert body.status_code == 401 and body.json()["error"] == "invalid_client"


def test_unsupported_grant_type(svc):
    app = svc.admin.app()
    r = httpx.post(svc.http + "/oauth/token", auth=(app.client_id, app.client_secret),
                   data={"grant_type": "authorization_code", "code": "x"})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


def test_grant_not_allowed_for_client_is_unauthorized_client(svc):
    app = svc.admin.app(grant_types=("password",))
    r = httpx.post(svc.http + "/oauth/token", auth=(app.client_id, app.client_secret),
                   data={"grant_type": "client_credentials"})
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"
    assert "refresh_token" not in login(svc.http, app).json()  # no refresh grant: no refresh token


def test_scope_may_narrow_never_widen(svc):
    app = svc.admin.app(user_scopes=("read", "offline_access"))
    narrow = login(svc.http, app, scope="read")
    assert narrow.json()["scope"] == "read"
    wide = login(svc.http, app, scope="read write")  # the client allows write, the user does not
    assert wide.status_code == 400 and wide.json()["error"] == "invalid_scope"
    bad = login(svc.http, app, scope='re"ad')
    assert bad.json()["error"] == "invalid_scope"
    assert login(svc.http, app).json()["scope"] == "read"  # offline_access only when asked for


def test_expires_in_may_shorten_never_lengthen(svc):
    app = svc.admin.app(access_token_ttl=300)
    assert login(svc.http, app, expires_in="60").json()["expires_in"] == 60
    long = login(svc.http, app, expires_in="99999").json()
    assert long["expires_in"] == 300
    c = claims_of(long["access_token"])
    assert c["exp"] - c["iat"] == 300
    assert login(svc.http, app, expires_in="soon").json()["error"] == "invalid_request"


def test_client_credentials_has_no_refresh_token(svc):
    app = svc.admin.app(grant_types=("client_credentials",), scopes=("jobs",))
    r = httpx.post(svc.http + "/oauth/token", auth=(app.client_id, app.client_secret),
                   data={"grant_type": "client_credentials"})
    assert r.status_code == 200
    body = r.json()
    assert "refresh_token" not in body and body["scope"] == "jobs"
    c = claims_of(body["access_token"])
    assert c["sub"] == app.client_id and c["tenant"] == app.tenant


def test_refresh_rotates_and_reuse_revokes_the_family(svc):
    app = svc.admin.app()
    first = login(svc.http, app).json()
    second = refresh(svc.http, app, first["refresh_token"])
    assert second.status_code == 200
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    third = refresh(svc.http, app, second["refresh_token"]).json()
    assert authz(svc.http, third["access_token"]).status_code == 200
    # the old one again: reuse, the whole family dies, the newest tokens too
    reuse = refresh(svc.http, app, first["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    assert refresh(svc.http, app, third["refresh_token"]).json()["error"] == "invalid_grant"
    assert authz(svc.http, third["access_token"]).status_code == 401


def test_refresh_token_works_only_for_its_client(svc):
    a = svc.admin.app()
    tokens = login(svc.http, a).json()
    other = svc.admin.app()
    r = refresh(svc.http, other, tokens["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert refresh(svc.http, a, tokens["refresh_token"]).status_code == 200  # not consumed by the attempt


def test_refresh_with_a_wrong_client_secret_consumes_nothing(svc):
    # the refresh record is read together with the client: a failed authentication must not use it
    app = svc.admin.app()
    tokens = login(svc.http, app).json()
    r = httpx.post(svc.http + "/oauth/token", auth=(app.client_id, "wrong-secret"),
                   data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert refresh(svc.http, app, tokens["refresh_token"]).status_code == 200


def store_calls(base: str) -> dict[str, float]:
    """The sidecar's store calls so far, by operation (auth_sidecar_store_seconds_count)."""
    calls = {}
    for line in httpx.get(base + "/metrics").text.splitlines():
        if line.startswith('auth_sidecar_store_seconds_count{op="'):
            op, _, count = line[len('auth_sidecar_store_seconds_count{op="'):].partition('"} ')
            calls[op] = float(count)
    return calls


def test_a_refresh_reads_the_store_once_then_rotates(svc):
    # the client, its throttle state and the refresh record come in one read: no separate lookup
    app = svc.admin.app()
    tokens = login(svc.http, app).json()
    before = store_calls(svc.http)
    assert refresh(svc.http, app, tokens["refresh_token"]).status_code == 200
    after = store_calls(svc.http)
    assert {op: n - before.get(op, 0) for op, n in after.items() if n != before.get(op, 0)} == \
        {"login_state": 1, "rotate_refresh": 1}


def test_refresh_may_narrow_scope(svc):
    app = svc.admin.app()
    tokens = login(svc.http, app).json()
    r = refresh(svc.http, app, tokens["refresh_token"], scope="read").json()
    assert r["scope"] == "read"
    assert refresh(svc.http, app, r["refresh_token"], scope="read write").json()["error"] == "invalid_scope"


def test_malformed_refresh_token(svc):
    app = svc.admin.app()
    assert refresh(svc.http, app, "garbage").json()["error"] == "invalid_grant"
    assert refresh(svc.http, app, "rt1-0123456789abcdef01234567-secret").json()["error"] == "invalid_grant"


async def test_concurrent_refreshes_exactly_one_wins(svc):
    """One rotation wins; the others, inside the reuse grace period, get its successor back."""
    app = svc.admin.app()
    rt = login(svc.http, app).json()["refresh_token"]
    async with httpx.AsyncClient(base_url=svc.http, auth=(app.client_id, app.client_secret)) as c:
        import asyncio
        results = await asyncio.gather(*(c.post("/oauth/token", data={"grant_type": "refresh_token",
                                                                      "refresh_token": rt}) for _ in range(20)))
    successors = {r.json()["refresh_token"] for r in results if r.status_code == 200}
    assert len(successors) == 1, successors
    assert all(r.json()["error"] == "invalid_grant" for r in results if r.status_code != 200)


def test_refresh_token_is_never_an_access_token(svc):
    app = svc.admin.app()
    tokens = login(svc.http, app).json()
    r = authz(svc.http, tokens["refresh_token"])
    assert r.status_code == 401 and "refresh" in r.headers["www-authenticate"]


def test_service_user_secret_and_key(svc):
    tenant = svc.admin.app().tenant
    su = svc.admin.post(f"/admin/tenants/{tenant}/service-users", {"name": "billing", "org_id": "org-42",
                                                                   "project_ids": ["pa", "pb"], "scopes": ["jobs"]})
    secret = svc.admin.post(f"/admin/service-users/{su['id']}/secrets", {"title": "ci"})
    cc = httpx.post(svc.http + "/oauth/token", auth=(secret["client_id"], secret["client_secret"]),
                    data={"grant_type": "client_credentials"}).json()
    c = claims_of(cc["access_token"])
    assert c["sub"] == su["id"] and c["org_id"] == "org-42" and c["project_ids"] == ["pa", "pb"]
    key = svc.admin.post(f"/admin/service-users/{su['id']}/keys", {"title": "laptop"})
    assert key["principal_id"] == su["id"] and "PRIVATE KEY" in key["private_key"]
    jwk = svc.admin.http.get(f"/admin/service-users/{su['id']}/keys/{key['kid']}").json()
    assert jwk["kid"] == key["kid"] and "d" not in jwk
    now = int(time.time())
    assertion = jwt.encode({"iss": su["id"], "sub": su["id"], "aud": svc.http.replace("127.0.0.1:" + str(svc.http_port), "127.0.0.1:8080") + "/oauth/token",
                            "exp": now + 60, "iat": now, "jti": "a-1"}, key["private_key"], algorithm="ES256",
                           headers={"kid": key["kid"]})
    r = httpx.post(svc.http + "/oauth/token", data={"grant_type": GRANT_JWT, "assertion": assertion})
    assert r.status_code == 200, r.text
    assert claims_of(r.json()["access_token"])["org_id"] == "org-42"
    assert "refresh_token" not in r.json()
    replay = httpx.post(svc.http + "/oauth/token", data={"grant_type": GRANT_JWT, "assertion": assertion})
    assert replay.json() == {"error": "invalid_grant", "error_description": "assertion jti was already used"}
    assertion2 = jwt.encode({"iss": su["id"], "sub": su["id"], "aud": "http://127.0.0.1:8080", "exp": now + 60,
                             "jti": "a-2"}, key["private_key"], algorithm="ES256", headers={"kid": key["kid"]})
    as_bearer = httpx.post(svc.http + "/oauth/token", data={"grant_type": GRANT_JWT},
                           headers={"authorization": f"Bearer {assertion2}"})
    assert as_bearer.status_code == 200
    # deleting the key revokes what it obtained and refuses new assertions
    token = as_bearer.json()["access_token"]
    assert authz(svc.http, token).status_code == 200
    assert svc.admin.http.delete(f"/admin/service-users/{su['id']}/keys/{key['kid']}").status_code == 204
    assert authz(svc.http, token).status_code == 401


@pytest.mark.parametrize("case", ["wrong aud", "long exp", "no jti", "iss mismatch", "alg mismatch", "unknown kid",
                                  "expired"])
def test_bad_assertions_are_invalid_grant(svc, case):
    tenant = svc.admin.app().tenant
    su = svc.admin.post(f"/admin/tenants/{tenant}/service-users", {"name": "s", "org_id": "o"})
    key = svc.admin.post(f"/admin/service-users/{su['id']}/keys", {})
    now = int(time.time())
    claims = {"iss": su["id"], "sub": su["id"], "aud": "http://127.0.0.1:8080", "exp": now + 60, "jti": case}
    headers = {"kid": key["kid"]}
    priv = key["private_key"]
    if case == "wrong aud":
        claims["aud"] = "https://elsewhere"
    elif case == "long exp":
        claims["exp"] = now + 86400
    elif case == "no jti":
        del claims["jti"]
    elif case == "iss mismatch":
        claims["iss"] = "someone-else"
    elif case == "unknown kid":
        headers["kid"] = "nope"
    elif case == "expired":
        claims["exp"] = now - 3600
    assertion = jwt.encode(claims, priv, algorithm="ES256", headers=headers)
    if case == "alg mismatch":
        h = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": key["kid"]}).encode()).rstrip(b"=").decode()
        assertion = h + assertion[assertion.index("."):]
    r = httpx.post(svc.http + "/oauth/token", data={"grant_type": GRANT_JWT, "assertion": assertion})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text


def test_failed_logins_are_throttled(svc):
    app = svc.admin.app()
    for _ in range(5):
        assert login(svc.http, app, password="wrong password").json()["error"] == "invalid_grant"
    r = login(svc.http, app)  # even the right password waits out the window
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert r.json()["error"] == "invalid_grant"
