"""Token-endpoint parameters in the URL query (seed 001's second form) are refused with a reason,
at /oauth/token, /oauth/revoke and /oauth/introspect; the URL (and so the password in it) never
reaches a log line."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import httpx
import pytest

from tests.support.admin_sidecar import admin_sidecar
from tests.support.oauth import login


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
def test_query_parameters_are_refused_and_never_logged(svc, path):
    app = svc.admin.app()
    marker = f"pw-{uuid.uuid4().hex}"
    query = urlencode({"password": marker, "username": "alice", "grant_type": "password", "scope": "read write",
                       "client_secret": app.client_secret, "client_id": app.client_id, "token": marker})
    r = httpx.post(f"{svc.http}{path}?{query}", auth=(app.client_id, app.client_secret),
                   headers={"accept": "application/json"})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "invalid_request"
    assert "URL query" in body["error_description"] and "body" in body["error_description"]
    assert marker not in r.text
    # the same request with the parameters in the body works (the token endpoint's answer)
    if path == "/oauth/token":
        assert login(svc.http, app, scope="read write").status_code == 200
    assert marker not in svc.logs()


def test_query_refused_even_with_a_valid_body(svc):
    app = svc.admin.app()
    r = httpx.post(f"{svc.http}/oauth/token?scope=read", auth=(app.client_id, app.client_secret),
                   data={"grant_type": "password", "username": "alice", "password": app.password})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert "URL query" in r.json()["error_description"]


def test_refused_query_never_reaches_a_log_line_even_at_debug(tmp_path):
    s = admin_sidecar(tmp_path, {"AUTH_SIDECAR_LOG_LEVEL": "debug"})
    try:
        app = s.admin.app()
        marker = f"pw-{uuid.uuid4().hex}"
        for path in ("/oauth/token", "/oauth/revoke", "/oauth/introspect"):
            r = httpx.post(f"{s.http}{path}?password={marker}&token={marker}&grant_type=password",
                           auth=(app.client_id, app.client_secret), data={"grant_type": "password"})
            assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    finally:
        s.stop()
    logs = s.logs()
    assert logs.strip() and marker not in logs  # the sidecar did log (at debug), just not the URL
