"""Tracing from the outside: the real `auth-sidecar serve` exporting OTLP/HTTP to a small
collector started here (spans leave the process, carry the caller's trace id, hold no
token, secret or password); with tracing off nothing of OpenTelemetry is even imported;
with tracing on and the packages missing, one config error line and exit status 2."""

from __future__ import annotations

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import httpx
import pytest
from envoy.service.auth.v3 import external_auth_pb2 as pb
from envoy.service.auth.v3 import external_auth_pb2_grpc as pb_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from harness.processes import ROOT
from tests.support.admin_sidecar import admin_sidecar
from tests.support.net import wait_until
from tests.support.oauth import ADMIN_TOKEN, login

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


class Collector:
    """An OTLP/HTTP traces endpoint that keeps every POST body."""

    def __init__(self) -> None:
        bodies = self.bodies = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                bodies.append(self.rfile.read(int(self.headers["content-length"])))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/traces"

    def spans(self) -> list:
        found = []
        for body in list(self.bodies):
            for resource in ExportTraceServiceRequest.FromString(body).resource_spans:
                service = {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"]
                for scope in resource.scope_spans:
                    found += [(service, span) for span in scope.spans]
        return found


def attributes(span) -> dict:
    out = {}
    for a in span.attributes:
        v = a.value
        out[a.key] = getattr(v, v.WhichOneof("value"))
    return out


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    collector = Collector()
    sidecar = admin_sidecar(tmp_path_factory.mktemp("tracing"),
                            {"AUTH_SIDECAR_TRACING__ENABLED": "true", "AUTH_SIDECAR_TRACING__EXPORTER": "otlp",
                             "AUTH_SIDECAR_TRACING__ENDPOINT": collector.url,
                             "AUTH_SIDECAR_TRACING__SERVICE_NAME": "edge-auth"}, ephemeral_key=True)
    yield sidecar, collector
    sidecar.stop()
    collector.server.shutdown()


def test_spans_leave_the_process_in_the_callers_trace_without_secrets(traced):
    sidecar, collector = traced
    app = sidecar.admin.app(grant_types=("password",), scopes=("read",))
    answer = login(sidecar.http, app, scope="read")
    assert answer.status_code == 200
    token = answer.json()["access_token"]
    r = httpx.get(sidecar.http + "/ext_authz/x", headers={"authorization": f"Bearer {token}",
                                                          "traceparent": TRACEPARENT, "x-project": "p1"})
    assert r.status_code == 200
    req = pb.CheckRequest()
    req.attributes.request.http.headers.update({"authorization": f"Bearer {token}", "traceparent": TRACEPARENT})
    req.attributes.request.http.path = "/x"
    with grpc.insecure_channel(sidecar.grpc) as channel:
        assert pb_grpc.AuthorizationStub(channel).Check(req, timeout=10).status.code == 0

    def checks():
        return [(service, s) for service, s in collector.spans() if s.name == "ext_authz.check"]
    wait_until(lambda: len(checks()) >= 2, what="both Check spans at the collector")
    assert {attributes(s)["authz.mode"] for _, s in checks()} == {"http", "grpc"}
    for service, span in checks():
        assert service == "edge-auth" and span.trace_id.hex() == TRACE_ID
        assert span.parent_span_id.hex() == TRACEPARENT.split("-")[2]
        assert attributes(span)["authz.decision"] == "allow"
    wait_until(lambda: any(s.name == "oauth.token" for _, s in collector.spans()), what="the token span")
    [(_, token_span)] = [(v, s) for v, s in collector.spans() if s.name == "oauth.token"]
    assert attributes(token_span)["oauth.grant_type"] == "password"
    assert attributes(token_span)["oauth.client_id"] == app.client_id
    assert any(s.parent_span_id == token_span.span_id and s.name.startswith("store.") for _, s in collector.spans())
    for body in collector.bodies:  # whatever left the process, in any field
        for secret in (token, app.client_secret, app.password, ADMIN_TOKEN):
            assert secret.encode() not in body


def run_python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("AUTH_SIDECAR_", "OTEL_"))}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**environ, **(env or {})},
                          capture_output=True, text=True, timeout=60)


OFF = """
import asyncio, sys
from envoy.service.auth.v3 import external_auth_pb2 as pb
import httpx
from config import load_settings
from sidecar import cli, server  # everything `serve` loads
from sidecar.container import build, faces
from transport.sockets import Acceptor, bind
from harness.net import free_port

async def main():
    settings = load_settings(environ={"AUTH_SIDECAR_GRPC_LISTEN": f"127.0.0.1:{free_port()}",
                                      "AUTH_SIDECAR_HTTP_LISTEN": f"127.0.0.1:{free_port()}"})
    c = build(settings)
    faces(c, Acceptor(bind(settings.grpc_listen)), Acceptor(bind(settings.http_listen)))
    await c.start()
    req = pb.CheckRequest()
    req.attributes.request.http.headers["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    c.authz_service.check_message(req.SerializeToString())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=c.app), base_url="http://s") as h:
        await h.post("/oauth/token", data={"grant_type": "client_credentials"})
    await c.close()
    print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))

asyncio.run(main())
"""


def test_with_tracing_off_opentelemetry_is_never_imported():
    done = run_python(OFF)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_tracing_on_without_the_packages_is_one_config_error():
    code = "import sys; sys.modules['opentelemetry'] = None\nfrom sidecar.cli import main\nsys.exit(main(['serve']))"
    done = run_python(code, {"AUTH_SIDECAR_TRACING__ENABLED": "true"})  # refused before any port is bound
    assert done.returncode == 2
    assert done.stderr.strip() == ("auth-sidecar: config error: tracing.enabled: the OpenTelemetry packages are not "
                                   "installed (pip install 'auth-sidecar[tracing]')")
