"""A demo upstream that answers every request with the headers it received, as JSON.

    python3 examples/echo.py 8000

Put it behind Envoy (examples/envoy.yaml routes both listeners to 127.0.0.1:8000) to see the
identity headers auth-sidecar injects, and that a client's own x-tenant-id never arrives.
Standard library only; not for production."""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    def _echo(self) -> None:
        headers: dict[str, list[str]] = {}
        for name, value in self.headers.items():  # every value of a repeated header
            headers.setdefault(name.lower(), []).append(value)
        # JSON, one header a line: {"path": ..., "headers": {"name": ["value", ...], ...}}
        lines = ",\n".join(f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in sorted(headers.items()))
        body = f'{{\n  "path": {json.dumps(self.path)},\n  "headers": {{\n{lines}\n  }}\n}}\n'.encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _echo

    def log_message(self, *args) -> None:  # quiet: the answer is the log
        pass


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    server = ThreadingHTTPServer(("127.0.0.1", port), Echo)
    print(f"echo upstream on http://127.0.0.1:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
