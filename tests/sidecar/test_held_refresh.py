"""Backend-held refresh (seed 003) and the per-client refresh policy, against a real
`auth-sidecar serve` on the memory store and on Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import httpx
import jwt

from tests.support.net import wait_until
from tests.support.oauth import ADMIN_TOKEN, authz, login
from tests.support.processes import ROOT

HELD = "urn:auth-sidecar:grant-type:held-refresh"


def held_app(svc, **extra):
    return svc.admin.app(grant_types=("password", HELD), refresh_policy="held", **extra)


def trade(svc, app, access_token: str) -> httpx.Response:
    return httpx.post(svc.http + "/oauth/token", auth=(app.client_id, app.client_secret),
                      data={"grant_type": HELD, "access_token": access_token})


def test_held_login_and_trade_never_carry_a_refresh_token(svc):
    app = held_app(svc)
    first = login(svc.http, app)
    assert first.status_code == 200, first.text
    assert "refresh_token" not in first.json()
    second = trade(svc, app, first.json()["access_token"])
    assert second.status_code == 200, second.text
    assert "refresh_token" not in second.json()
    assert authz(svc.http, second.json()["access_token"]).status_code == 200
    assert authz(svc.http, first.json()["access_token"]).status_code == 401  # traded: revoked
    third = trade(svc, app, second.json()["access_token"])  # the held token rotated: the chain goes on
    assert third.status_code == 200, third.text


def test_an_access_token_traded_twice_revokes_the_family(svc):
    app = held_app(svc)
    at = login(svc.http, app).json()["access_token"]
    newer = trade(svc, app, at).json()["access_token"]
    again = trade(svc, app, at)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert "already traded" in again.json()["error_description"]
    wait_until(lambda: authz(svc.http, newer).status_code == 401, what="the family's tokens revoked")
    assert trade(svc, app, newer).status_code == 400


def test_an_expired_access_token_refreshes(svc):
    app = held_app(svc, access_token_ttl=1)
    at = login(svc.http, app).json()["access_token"]
    exp = jwt.decode(at, options={"verify_signature": False})["exp"]
    wait_until(lambda: time.time() > exp + 0.2, what="the access token expired")
    answer = trade(svc, app, at)
    assert answer.status_code == 200, answer.text
    assert "refresh_token" not in answer.json()


def test_an_access_token_of_another_client_is_refused(svc):
    app, other = held_app(svc), held_app(svc)
    at = login(svc.http, app).json()["access_token"]
    answer = trade(svc, other, at)
    assert answer.status_code == 400 and "another client" in answer.json()["error_description"]
    assert trade(svc, app, at).status_code == 200  # the refusal did not spend it


def test_the_access_token_alone_cannot_refresh(svc):
    app = held_app(svc)
    at = login(svc.http, app).json()["access_token"]
    answer = httpx.post(svc.http + "/oauth/token", data={"grant_type": HELD, "access_token": at})
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
    wrong = httpx.post(svc.http + "/oauth/token", auth=(app.client_id, "not-the-secret"),
                       data={"grant_type": HELD, "access_token": at})
    assert wrong.status_code == 401


def test_logout_by_revocation_ends_the_session(svc):
    app = held_app(svc)
    at = login(svc.http, app).json()["access_token"]
    out = httpx.post(svc.http + "/oauth/revoke", auth=(app.client_id, app.client_secret), data={"token": at})
    assert out.status_code == 200
    wait_until(lambda: authz(svc.http, at).status_code == 401, what="the access token revoked")
    answer = trade(svc, app, at)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_refresh_policies(svc):
    always = svc.admin.app()  # the default: as before the policy existed
    assert "refresh_token" in login(svc.http, always).json()
    never = svc.admin.app(refresh_policy="never")
    assert "refresh_token" not in login(svc.http, never, scope="read offline_access").json()
    offline = svc.admin.app(refresh_policy="offline")
    assert "refresh_token" not in login(svc.http, offline).json()
    assert "refresh_token" in login(svc.http, offline, scope="read offline_access").json()
    assert "refresh_token" in login(svc.http, offline, access_type="offline").json()


def test_no_implicit_offline_access_and_capped_lifetimes(svc):
    app = svc.admin.app(access_token_ttl=600)
    answer = login(svc.http, app).json()
    assert "offline_access" not in answer["scope"].split() and "read" in answer["scope"].split()
    assert "offline_access" in login(svc.http, app, scope="read offline_access").json()["scope"].split()
    assert login(svc.http, app, expires_in="60").json()["expires_in"] == 60
    assert login(svc.http, app, expiration="120").json()["expires_in"] == 120
    assert login(svc.http, app, expires_in="100000").json()["expires_in"] == 600  # never past the client's maximum
    bad = login(svc.http, app, expiration="soon")
    assert bad.status_code == 400 and "expiration" in bad.json()["error_description"]


def test_the_cli_makes_a_held_client_and_the_api_refuses_a_held_policy_without_its_grant(svc):
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    svc.admin.post("/admin/tenants", {"id": tenant, "name": tenant})
    done = subprocess.run([sys.executable, "-m", "sidecar.cli", "admin", "--url", svc.http, "--token", ADMIN_TOKEN,
                           "create-client", tenant, "venue", "--grant-types", f"password {HELD}",
                           "--refresh-policy", "held", "--client-id", f"venue-{tenant}"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["client_id"] == f"venue-{tenant}"
    refused = svc.admin.http.post(f"/admin/tenants/{tenant}/clients", json={
        "name": "x", "grant_types": ["password", "refresh_token"], "refresh_policy": "held"})
    assert refused.status_code == 422 and HELD in refused.json()["error_description"]
    taken = svc.admin.http.post(f"/admin/tenants/{tenant}/clients", json={
        "name": "x", "grant_types": ["password"], "client_id": f"venue-{tenant}"})
    assert taken.status_code == 409
