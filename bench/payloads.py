"""What the loaders send: wrk Lua scripts cycling through tokens or form bodies, and the
gRPC Check body h2load repeats."""

from __future__ import annotations

import base64
import struct
from pathlib import Path


def wrk_script(tmp: Path, name: str, lines: list[str], request: str) -> Path:
    """A wrk Lua script that cycles through `lines` (one per request); `request` is the Lua
    expression building the request from `line`. Requests are built once, in init (after wrk
    sets Host): building one per request cost wrk ~50 µs of the two cores, against ~13 µs for
    its static request, and the rows with a pool would have paid for it."""
    data = tmp / f"{name}.txt"
    data.write_text("\n".join(lines) + "\n")
    script = tmp / f"{name}.lua"
    script.write_text(f"""
requests = {{}}
i = 0
init = function(args)
  for line in io.lines("{data}") do requests[#requests + 1] = {request} end
end
request = function()
  i = i + 1
  if i > #requests then i = 1 end
  return requests[i]
end
""")
    return script


def token_lua(tmp: Path, name: str, tokens: list[str]) -> Path:
    return wrk_script(tmp, name, tokens, 'wrk.format(nil, nil, {["authorization"] = "Bearer " .. line})')


def post_lua(tmp: Path, name: str, auth: tuple[str, str], bodies: list[str]) -> Path:
    basic = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    return wrk_script(tmp, name, bodies, f'wrk.format("POST", "/oauth/token", {{["Authorization"] = "Basic {basic}", '
                                          '["Content-Type"] = "application/x-www-form-urlencoded"}, line)')


def grpc_body(tmp: Path, token: str) -> Path:
    from envoy.service.auth.v3 import external_auth_pb2 as pb
    req = pb.CheckRequest()
    req.attributes.request.http.headers["authorization"] = f"Bearer {token}"
    req.attributes.request.http.path = "/"
    req.attributes.context_extensions["required_scopes"] = "read"
    raw = req.SerializeToString()
    path = tmp / "check.bin"
    path.write_bytes(b"\x00" + struct.pack(">I", len(raw)) + raw)
    return path
