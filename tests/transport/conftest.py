from __future__ import annotations

import shutil

import pytest

from authz.keys import write_new_key
from tests.conftest import need_binary
from tests.support.processes import Sidecar


@pytest.fixture(scope="session")
def h2_sidecar(tmp_path_factory):
    """One `auth-sidecar serve` (h2 transport) for the attack and strictness tests, with a
    token it accepts."""
    tmp = tmp_path_factory.mktemp("h2")
    keys = tmp / "keys"
    write_new_key(keys, "ES256")
    sidecar = Sidecar(env={"AUTH_SIDECAR_KEYS_DIR": str(keys)}, tmp=tmp).start()
    sidecar.token = sidecar.mint("--sub", "user-1", "--tenant", "acme", "--scope", "read", "--ttl", "3600")
    yield sidecar
    assert sidecar.stop() == 0


@pytest.fixture(scope="session")
def nghttp() -> str:
    return need_binary("nghttp (nghttp2-client)", shutil.which("nghttp"))


@pytest.fixture(scope="session")
def h2load() -> str:
    return need_binary("h2load (nghttp2-client)", shutil.which("h2load"))
