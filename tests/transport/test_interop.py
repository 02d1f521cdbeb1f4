"""Issue 14, finding 2 and independent clients: the real `auth-sidecar serve` as grpcio's
client, h2load and nghttp see it, including a client whose HPACK table is 0 bytes (RFC 7541
§4.2: the first header block after that SETTINGS starts with a table size update)."""

from __future__ import annotations

import re
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor

import grpc
from envoy.service.auth.v3 import external_auth_pb2 as pb
from envoy.service.auth.v3 import external_auth_pb2_grpc as pb_grpc
from hpack import Decoder

from tests.transport.raw import HEALTH, Raw, message, request_block, w
from transport.h2.headers import TABLE_SIZE_ZERO

CHECK = "/envoy.service.auth.v3.Authorization/Check"


def check_body(tmp_path, token: str):
    request = pb.CheckRequest()
    request.attributes.request.http.headers["authorization"] = f"Bearer {token}"
    request.attributes.request.http.path = "/"
    raw = request.SerializeToString()
    path = tmp_path / "check.bin"
    path.write_bytes(b"\0" + struct.pack(">I", len(raw)) + raw)
    return path


def test_nghttp_with_a_zero_header_table(h2_sidecar, nghttp, tmp_path):
    body = check_body(tmp_path, h2_sidecar.token)
    url = f"http://{h2_sidecar.grpc}{CHECK}"
    out = subprocess.run([nghttp, "-v", "--header-table-size=0", "-H", "content-type: application/grpc",
                          "-H", "te: trailers", "-d", str(body), url], capture_output=True, text=True,
                          errors="replace", timeout=30)  # -v prints the binary answer too
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "COMPRESSION_ERROR" not in out.stdout + out.stderr
    assert "grpc-status: 0" in out.stdout


def test_the_first_block_after_a_smaller_table_carries_the_size_update(h2_sidecar):
    raw = Raw(h2_sidecar.grpc_port, settings={w.SETTINGS_HEADER_TABLE_SIZE: 0})
    blocks = []
    for sid in (1, 3):
        raw.send(w.frame(w.HEADERS, w.END_HEADERS, sid, request_block(HEALTH)),
                 w.frame(w.DATA, w.END_STREAM, sid, message(b"")))
        while (f := raw.frame())[0] != w.HEADERS or not f[1] & w.END_STREAM:
            if f[0] == w.HEADERS:
                blocks.append(f[3])
        blocks.append(f[3])
    assert blocks[0].startswith(TABLE_SIZE_ZERO) and not blocks[1].startswith(TABLE_SIZE_ZERO)
    decoder = Decoder()
    decoder.max_allowed_table_size = 0  # what the client announced: a decoder that size accepts it all
    fields = [dict(decoder.decode(b, raw=True)) for b in blocks]
    assert fields[0][b":status"] == b"200" and fields[-1][b"grpc-status"] == b"0"


def test_h2load(h2_sidecar, h2load, tmp_path):
    body = check_body(tmp_path, h2_sidecar.token)
    out = subprocess.run([h2load, "-n", "3000", "-c", "4", "-m", "32", "--header-table-size=0",
                          "-H", "content-type: application/grpc", "-H", "te: trailers", "-d", str(body),
                          f"http://{h2_sidecar.grpc}{CHECK}"], capture_output=True, text=True, timeout=60)
    assert re.search(r"3000 succeeded, 0 failed, 0 errored", out.stdout), out.stdout[-2000:]


def test_grpcio_client(h2_sidecar):
    with grpc.insecure_channel(h2_sidecar.grpc) as channel:
        stub = pb_grpc.AuthorizationStub(channel)
        request = pb.CheckRequest()
        request.attributes.request.http.headers["authorization"] = f"Bearer {h2_sidecar.token}"
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: stub.Check(request, timeout=10), range(400)))
    assert {a.status.code for a in answers} == {0}
