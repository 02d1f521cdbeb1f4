"""A trusted issuer's JWKS endpoint on loopback, whose keys and health the test controls."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from authz.keys import public_jwk, thumbprint_kid
from tests.support.net import free_port


class IssuerKey:
    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.kid = thumbprint_kid(self.private.public_key())

    @property
    def jwk(self) -> dict[str, Any]:
        return public_jwk(self.kid, "ES256", self.private.public_key())


class JwksServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.keys: list[IssuerKey] = []
        self.fail = False
        self.fetches = 0
        self.gate: threading.Event | None = None  # when set, each fetch waits for it
        self.fetch_started = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                owner.fetch_started.set()
                if owner.gate is not None:
                    owner.gate.wait(30)
                if owner.fail:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.dumps({"keys": [k.jwk for k in owner.keys]}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
