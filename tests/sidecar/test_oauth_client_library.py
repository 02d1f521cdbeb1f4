"""A real OAuth client library (requests-oauthlib) against the token service."""

from __future__ import annotations

import os
import time

import jwt
import requests
from oauthlib.oauth2 import BackendApplicationClient, LegacyApplicationClient
from requests_oauthlib import OAuth2Session

from tests.support.oauth import authz

os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")  # loopback http in tests


def test_password_login_refresh_and_client_credentials(svc):
    app = svc.admin.app()
    token_url = svc.http + "/oauth/token"
    session = OAuth2Session(client=LegacyApplicationClient(client_id=app.client_id))
    token = session.fetch_token(token_url, username=app.username, password=app.password,
                                client_id=app.client_id, client_secret=app.client_secret)
    assert token["token_type"] == "Bearer" and token["refresh_token"]
    assert authz(svc.http, token["access_token"]).status_code == 200
    refreshed = session.refresh_token(token_url, refresh_token=token["refresh_token"],
                                      auth=(app.client_id, app.client_secret))
    assert refreshed["access_token"] != token["access_token"]
    assert refreshed["refresh_token"] != token["refresh_token"]

    backend = svc.admin.app(grant_types=("client_credentials",), scopes=("jobs",))
    cc = OAuth2Session(client=BackendApplicationClient(client_id=backend.client_id))
    t = cc.fetch_token(token_url, client_id=backend.client_id, client_secret=backend.client_secret)
    assert t["scope"] == ["jobs"] and "refresh_token" not in t


def test_service_user_jwt_bearer_with_returned_private_key(svc):
    tenant = svc.admin.app().tenant
    su = svc.admin.post(f"/admin/tenants/{tenant}/service-users", {"name": "etl", "org_id": "org-7",
                                                                   "project_ids": ["p9"]})
    key = svc.admin.post(f"/admin/service-users/{su['id']}/keys", {"title": "etl-key"})
    now = int(time.time())
    assertion = jwt.encode({"iss": key["principal_id"], "sub": key["principal_id"],
                            "aud": "http://127.0.0.1:8080/oauth/token", "iat": now, "exp": now + 120,
                            "jti": f"etl-{now}"}, key["private_key"], algorithm="ES256", headers={"kid": key["kid"]})
    r = requests.post(svc.http + "/oauth/token",
                      data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion})
    assert r.status_code == 200, r.text
    ok = authz(svc.http, r.json()["access_token"])
    assert ok.headers["x-org-id"] == "org-7" and ok.headers["x-project-id"] == "p9"
