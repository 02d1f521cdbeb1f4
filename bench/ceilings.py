"""The ceilings of any ext_authz server behind the bench's Envoy: constant servers written in C
that do no work per check. `nginx` answers every HTTP-mode check 200 with the identity headers
the sidecar would set; `nghttpd` (nghttp2's HTTP/2 server, h2c) answers every gRPC Check with
the same file: an empty CheckResponse (status unset: OK) in a 5-byte gRPC frame, and the
`grpc-status: 0` trailer. nghttpd sends no content-type for it (it names a type only by a
file's extension, and `Check` has none); Envoy's gRPC client does not ask for one (it reads
`:status` and `grpc-status`), and a failed Check would fail the row (wrk's non-2xx count).
A second nghttpd (`ceiling_grpc_allow`) serves the exact bytes of the sidecar's allow for the
bench's token (`allow_of`): the same answer, so Envoy spends the same CPU applying its
header mutations (and dynamic metadata, when the sidecar's `dynamic_metadata` names fields)
in both rows.
Debian: `apt-get install nginx-light nghttp2-server`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from harness.processes import Proc

IDENTITY = {"x-tenant-id": "acme", "x-org-id": "org-9", "x-project-id": "p1", "x-user-id": "user-7",
            "x-client-id": "web", "x-scopes": "read"}
EMPTY_CHECK_RESPONSE = b"\x00\x00\x00\x00\x00"  # uncompressed, length 0: CheckResponse{}
CHECK_PATH = "envoy.service.auth.v3.Authorization/Check"


def binary(name: str) -> str | None:
    """On PATH, or in /usr/sbin where Debian puts nginx (not on every user's PATH)."""
    found = shutil.which(name)
    if found:
        return found
    candidate = Path("/usr/sbin") / name
    return str(candidate) if os.access(candidate, os.X_OK) else None


def nginx(tmp: Path, port: int) -> Proc:
    exe = binary("nginx")
    if exe is None:
        raise RuntimeError("nginx not found (apt-get install nginx-light)")
    folder = tmp / "nginx"
    folder.mkdir(exist_ok=True)
    headers = "\n".join(f"            add_header {k} {v};" for k, v in IDENTITY.items())
    conf = folder / "nginx.conf"
    # one worker process, as the sidecar runs one; keep-alive connections as long as the run
    conf.write_text(f"""daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{port};
        location / {{
{headers}
            return 200;
        }}
    }}
}}
""")
    return Proc([exe, "-e", str(folder / "error.log"), "-p", str(folder), "-c", str(conf)],
                log=folder / "stdout.log")


def allow_of(target: str, token: str) -> bytes:
    """The gRPC message (prefix and CheckResponse) the sidecar at `target` answers the bench's
    Check with (the token, path `/`, `required_scopes: read`, as Envoy's listener sends it)."""
    import grpc
    from envoy.service.auth.v3 import external_auth_pb2 as pb

    req = pb.CheckRequest()
    req.attributes.request.http.headers["authorization"] = f"Bearer {token}"
    req.attributes.request.http.path = "/"
    req.attributes.context_extensions["required_scopes"] = "read"
    try:
        with grpc.insecure_channel(target) as channel:
            raw = channel.unary_unary(f"/{CHECK_PATH}", request_serializer=pb.CheckRequest.SerializeToString)(
                req, timeout=10)
    except grpc.RpcError as exc:  # the row fails, the run goes on
        raise RuntimeError(f"the sidecar's allow could not be fetched: {exc.code()}") from None
    if pb.CheckResponse.FromString(raw).status.code != 0:
        raise RuntimeError("the sidecar did not allow the bench's token")
    return b"\x00" + len(raw).to_bytes(4, "big") + raw


def nghttpd(tmp: Path, port: int, answer: bytes = EMPTY_CHECK_RESPONSE, name: str = "nghttpd") -> Proc:
    exe = binary("nghttpd")
    if exe is None:
        raise RuntimeError("nghttpd not found (apt-get install nghttp2-server)")
    root = tmp / name
    path = root / CHECK_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(answer)
    return Proc([exe, "--no-tls", "-d", str(root), "--trailer", "grpc-status: 0", "--address", "127.0.0.1",
                 str(port)], log=tmp / f"{name}.log")
