"""Delegating password checks to an external credentials service."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt

from tests.support.admin_sidecar import admin_sidecar
from tests.support.net import free_port


class Credentials(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if body == {"username": "bob", "password": "hunter22", "tenant": body["tenant"]}:
            answer = json.dumps({"sub": "ext-bob", "org_id": "org-x", "project_ids": ["px"]}).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
        else:
            self.send_response(401)
            self.send_header("content-length", "0")
            self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_password_grant_against_external_credentials_service(tmp_path):
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Credentials)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sidecar = admin_sidecar(tmp_path, {"AUTH_SIDECAR_CREDENTIALS_SERVICE_URL": f"http://127.0.0.1:{port}/login"})
    try:
        app = sidecar.admin.app()
        ok = httpx.post(sidecar.http + "/oauth/token", auth=(app.client_id, app.client_secret),
                        data={"grant_type": "password", "username": "bob", "password": "hunter22"})
        assert ok.status_code == 200, ok.text
        claims = jwt.decode(ok.json()["access_token"], options={"verify_signature": False})
        assert claims["sub"] == "ext-bob" and claims["org_id"] == "org-x" and claims["tenant"] == app.tenant
        bad = httpx.post(sidecar.http + "/oauth/token", auth=(app.client_id, app.client_secret),
                         data={"grant_type": "password", "username": "bob", "password": "wrong"})
        assert bad.json()["error"] == "invalid_grant"
        server.shutdown()
        server.server_close()
        down = httpx.post(sidecar.http + "/oauth/token", auth=(app.client_id, app.client_secret),
                          data={"grant_type": "password", "username": "bob", "password": "hunter22"})
        assert down.status_code == 503 and down.json()["error"] == "temporarily_unavailable"
    finally:
        sidecar.stop()
        server.server_close()
