"""One stack for the end-to-end tests: sidecar + echo upstream + the real Envoy from docs/envoy.md."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from authz.keys import write_new_key
from tests.support.net import free_port
from tests.support.processes import EchoUpstream, Envoy, Sidecar, envoy_yaml_from_docs


@dataclass
class Stack:
    sidecar: Sidecar
    upstream: EchoUpstream
    envoy: Envoy
    grpc_url: str
    http_url: str


def envoy_config(sidecar: Sidecar, upstream: EchoUpstream, grpc_listener: int, http_listener: int) -> str:
    text = envoy_yaml_from_docs()
    for old, new in (("port_value: 10000", f"port_value: {grpc_listener}"),
                     ("port_value: 10001", f"port_value: {http_listener}"),
                     ("port_value: 9191", f"port_value: {sidecar.grpc_port}"),
                     ("port_value: 8080", f"port_value: {sidecar.http_port}"),
                     ("http://127.0.0.1:8080", sidecar.http),
                     ("port_value: 8000", f"port_value: {upstream.port}")):
        assert old in text, f"docs/envoy.md no longer has {old!r}"
        text = text.replace(old, new)
    return text


def start_stack(tmp: Path, env: dict[str, str], args: list[str] | None = None) -> Stack:
    return stack_around(Sidecar(env=env, args=args, tmp=tmp).start(), tmp)


def stack_around(sidecar: Sidecar, tmp: Path) -> Stack:
    """Envoy and the echo upstream in front of a sidecar already started (admin_sidecar's)."""
    upstream = EchoUpstream().start()
    grpc_listener, http_listener = free_port(), free_port()
    envoy = Envoy(envoy_config(sidecar, upstream, grpc_listener, http_listener), tmp).start()
    return Stack(sidecar, upstream, envoy, f"http://127.0.0.1:{grpc_listener}", f"http://127.0.0.1:{http_listener}")


def stop_stack(stack: Stack) -> None:
    stack.envoy.stop()
    stack.upstream.stop()
    stack.sidecar.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, envoy_path):
    tmp = tmp_path_factory.mktemp("e2e")
    keys = tmp / "keys"
    write_new_key(keys)
    s = start_stack(tmp, {"AUTH_SIDECAR_KEYS_DIR": str(keys)})
    yield s
    stop_stack(s)


@pytest.fixture(params=["grpc", "http"])
def envoy(request, world) -> str:
    """The Envoy listener of each ext_authz mode in front of the test module's `world.stack`."""
    return world.stack.grpc_url if request.param == "grpc" else world.stack.http_url
