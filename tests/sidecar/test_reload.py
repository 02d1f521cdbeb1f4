"""Reload under load: SIGHUP and a changed config file apply new routes and header names with
no failed Check; a config that does not validate is refused with one log line and the
running one keeps serving; settings that need a restart are named."""

from __future__ import annotations

import signal
import time

import httpx
import jwt
import pytest
import yaml

from tests.support.jwks_server import IssuerKey, JwksServer
from tests.support.load import CheckLoad
from tests.support.net import free_port, wait_until
from tests.support.processes import Sidecar

ROUTES = [{"path_prefix": "/admin", "required_scopes": "read"}]
STRICT = [{"path_prefix": "/admin", "required_scopes": "admin"}]


def write(path, **settings) -> None:
    path.write_text(yaml.safe_dump(settings))


def check(s: Sidecar, token: str, path: str) -> httpx.Response:
    return httpx.get(s.http + "/ext_authz" + path, headers={"authorization": f"Bearer {token}"}, timeout=10)


def count(s: Sidecar, text: str) -> int:
    return s.logs().count(text)


@pytest.fixture
def config(tmp_path, keys_dir):
    path = tmp_path / "sidecar.yaml"
    write(path, keys_dir=str(keys_dir), routes=ROUTES, reload_poll_seconds=0)
    return path


def test_sighup_reloads_under_load_and_refuses_an_invalid_config(tmp_path, config):
    s = Sidecar(args=["--config", str(config)], tmp=tmp_path).start()
    try:
        token = s.mint("--config", str(config), "--sub", "u1", "--tenant", "t1", "--scope", "read")
        assert check(s, token, "/admin/x").status_code == 200
        load = CheckLoad([s.http], [s.grpc], lambda: (token, "/public/x", "")).start(threads=2)
        try:
            wait_until(lambda: len(load.outcomes) > 50, 20, "load running")
            # valid: stricter route, another user header, a setting that needs a restart
            write(config, keys_dir=str(config.parent / "keys"), routes=STRICT, reload_poll_seconds=0,
                  headers={"user": "x-auth-user"}, cache={"ttl_seconds": 10})
            s.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: count(s, '"msg": "config reloaded"') == 1, 10, "reloaded")
            denied = check(s, token, "/admin/x")
            assert denied.status_code == 403 and "insufficient_scope" in denied.headers["www-authenticate"]
            allowed = check(s, token, "/public/x")  # cached before: the new header name applies too
            assert allowed.headers["x-auth-user"] == "u1" and "x-user-id" not in allowed.headers
            assert count(s, "cache changed but apply only after a restart") == 1
            # invalid: refused with one line, the previous config keeps serving
            before = len(load.outcomes)
            write(config, keys_dir=str(config.parent / "keys"), routes=[{"path_prefix": "/admin", "bogus": 1}])
            s.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: count(s, "config reload refused") == 1, 10, "refused")
            assert "routes.0.bogus" in s.logs()
            assert check(s, token, "/admin/x").status_code == 403
            assert check(s, token, "/public/x").headers["x-auth-user"] == "u1"
            wait_until(lambda: len(load.outcomes) > before + 50, 20, "load after the refusal")
        finally:
            outcomes = load.stop()
        assert s.proc.poll() is None  # SIGHUP never ends the process
        assert count(s, '"msg": "config reloaded"') == 1 and count(s, "config reload refused") == 1
        failed = [o for o in outcomes if o.status != 200]
        assert not failed and len(outcomes) > 100, failed[:5]
        assert {o.mode for o in outcomes} == {"http", "grpc"}
    finally:
        assert s.stop() == 0


def test_workers_reload_on_sighup_and_on_a_changed_file(tmp_path, keys_dir, redis_server):
    path = tmp_path / "sidecar.yaml"
    write(path, keys_dir=str(keys_dir), routes=ROUTES, reload_poll_seconds=0.3,
          store_url=redis_server.url.replace("/0", "/7"))
    s = Sidecar(args=["--config", str(path), "--workers", "2"], tmp=tmp_path).start()
    try:
        wait_until(lambda: count(s, '"msg": "serving"') == 2, 20, "both workers serving")
        token = s.mint("--config", str(path), "--sub", "u1", "--scope", "read")
        # the supervisor forwards SIGHUP to each worker, which reloads (and stays up)
        s.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: count(s, '"reason": "SIGHUP"') == 2, 10, "both workers reloaded")
        # a changed file is picked up by each worker on its own
        write(path, keys_dir=str(keys_dir), routes=STRICT, reload_poll_seconds=0.3,
              store_url=redis_server.url.replace("/0", "/7"), access_token_ttl_seconds=60)
        wait_until(lambda: count(s, '"reason": "config file changed"') == 2, 10, "file change applied by both")
        assert count(s, "access_token_ttl_seconds changed but apply only after a restart") == 2
        for _ in range(8):  # new connections land on either worker: both apply the new route
            with httpx.Client() as c:
                r = c.get(s.http + "/ext_authz/admin/x", headers={"authorization": f"Bearer {token}"})
                assert r.status_code == 403
        assert s.proc.poll() is None
    finally:
        assert s.stop() == 0


def test_a_changed_file_adds_a_trusted_issuer_and_an_unreachable_jwks_is_refused(tmp_path, keys_dir):
    idp = JwksServer()
    idp.keys.append(IssuerKey())
    path = tmp_path / "sidecar.yaml"
    write(path, keys_dir=str(keys_dir), reload_poll_seconds=0.2)
    s = Sidecar(args=["--config", str(path)], tmp=tmp_path).start()
    try:
        key = idp.keys[0]
        token = jwt.encode({"iss": "https://idp.example", "sub": "u9", "aud": "api", "exp": int(time.time()) + 600},
                           key.private, algorithm="ES256", headers={"kid": key.kid})
        assert check(s, token, "/x").status_code == 401  # not trusted yet
        trusted = [{"issuer": "https://idp.example", "jwks_uri": idp.uri, "audiences": ["api"]}]
        write(path, keys_dir=str(keys_dir), reload_poll_seconds=0.2, trusted_issuers=trusted)
        wait_until(lambda: count(s, '"reason": "config file changed"') == 1, 10, "file change applied")
        allowed = check(s, token, "/x")
        assert allowed.status_code == 200 and allowed.headers["x-user-id"] == "u9"
        # a new issuer whose JWKS cannot be fetched: refused, the running issuers stay
        dead = trusted + [{"issuer": "https://down.example", "jwks_uri": f"http://127.0.0.1:{free_port()}/jwks"}]
        write(path, keys_dir=str(keys_dir), reload_poll_seconds=0.2, trusted_issuers=dead)
        wait_until(lambda: count(s, "config reload refused") == 1, 15, "refused")
        assert "could not be fetched" in s.logs() and s.proc.poll() is None
        assert httpx.get(s.http + "/readyz").status_code == 200
        assert check(s, token, "/x").status_code == 200
    finally:
        assert s.stop() == 0
        idp.stop()
