"""RFC 7009 revocation and RFC 7662 introspection; revocation reaches ext_authz at once."""

from __future__ import annotations

import httpx

from tests.support.oauth import authz, login, refresh


def post(svc, path, app, **data):
    return httpx.post(svc.http + path, auth=(app.client_id, app.client_secret), data=data)


def test_revoking_an_access_token_denies_the_next_check(svc):
    app = svc.admin.app()
    tokens = login(svc.http, app).json()
    assert authz(svc.http, tokens["access_token"]).status_code == 200  # now cached
    r = post(svc, "/oauth/revoke", app, token=tokens["access_token"], token_type_hint="access_token")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    denied = authz(svc.http, tokens["access_token"])
    assert denied.status_code == 401 and "revoked" in denied.headers["www-authenticate"]
    # the refresh token of the same login still works: only that access token was revoked
    assert refresh(svc.http, app, tokens["refresh_token"]).status_code == 200


def test_revoking_a_refresh_token_kills_its_family(svc):
    app = svc.admin.app()
    tokens = login(svc.http, app).json()
    assert post(svc, "/oauth/revoke", app, token=tokens["refresh_token"]).status_code == 200
    assert refresh(svc.http, app, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert authz(svc.http, tokens["access_token"]).status_code == 401


def test_revocation_of_unknown_or_foreign_tokens_is_200_and_changes_nothing(svc):
    a, b = svc.admin.app(), svc.admin.app()
    tokens = login(svc.http, a).json()
    assert post(svc, "/oauth/revoke", b, token=tokens["access_token"]).status_code == 200
    assert post(svc, "/oauth/revoke", b, token="garbage").status_code == 200
    assert authz(svc.http, tokens["access_token"]).status_code == 200
    assert post(svc, "/oauth/revoke", a, token="x", token_type_hint="id_token").json()["error"] == "unsupported_token_type"


def test_revocation_requires_client_authentication(svc):
    r = httpx.post(svc.http + "/oauth/revoke", data={"token": "x"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_introspection(svc):
    app = svc.admin.app()
    tokens = login(svc.http, app).json()
    access = post(svc, "/oauth/introspect", app, token=tokens["access_token"]).json()
    assert access["active"] is True and access["token_type"] == "access_token"
    assert access["tenant"] == app.tenant and access["client_id"] == app.client_id
    rt = post(svc, "/oauth/introspect", app, token=tokens["refresh_token"]).json()
    assert rt["active"] is True and rt["token_type"] == "refresh_token"
    assert post(svc, "/oauth/introspect", app, token="nope").json() == {"active": False}
    other = svc.admin.app()  # another tenant's client learns nothing
    assert post(svc, "/oauth/introspect", other, token=tokens["access_token"]).json() == {"active": False}
    post(svc, "/oauth/revoke", app, token=tokens["access_token"])
    assert post(svc, "/oauth/introspect", app, token=tokens["access_token"]).json() == {"active": False}


def test_deleting_a_user_revokes_their_tokens(svc):
    app = svc.admin.app()
    tokens = login(svc.http, app).json()
    assert authz(svc.http, tokens["access_token"]).status_code == 200
    r = svc.admin.http.delete(f"/admin/tenants/{app.tenant}/users/{app.user_id}")
    assert r.status_code == 204
    assert authz(svc.http, tokens["access_token"]).status_code == 401
    refused = refresh(svc.http, app, tokens["refresh_token"]).json()
    assert refused == {"error": "invalid_grant", "error_description": "refresh token has been revoked"}
    assert login(svc.http, app).json()["error"] == "invalid_grant"


def test_deleting_a_client_revokes_its_tokens(svc):
    app = svc.admin.app()
    tokens = login(svc.http, app).json()
    assert svc.admin.http.delete(f"/admin/tenants/{app.tenant}/clients/{app.client_id}").status_code == 204
    assert authz(svc.http, tokens["access_token"]).status_code == 401
    assert refresh(svc.http, app, tokens["refresh_token"]).json()["error"] == "invalid_client"
