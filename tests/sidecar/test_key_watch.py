"""keys_dir followed while running, including a Kubernetes Secret volume's `..data` swap."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from authz import key_schedule as ks
from authz.keys import KeyRing, generate_private_key, private_pem, thumbprint_kid
from sidecar.key_watch import KeyWatcher

pytestmark = pytest.mark.asyncio


class SecretVolume:
    """The kubelet's atomic writer: files in a timestamped folder, `..data` pointing at it, one
    visible symbolic link per key; an update swaps `..data` by a rename."""

    def __init__(self, root: Path) -> None:
        self.root, self.version = root, 0
        root.mkdir()

    def write(self, files: dict[str, bytes]) -> None:
        self.version += 1
        stamp = self.root / f"..2026_11_28_{self.version:04d}"
        stamp.mkdir()
        for name, data in files.items():
            (stamp / name).write_bytes(data)
        old = os.readlink(self.root / "..data") if (self.root / "..data").exists() else None
        os.symlink(stamp.name, self.root / "..data_tmp")
        os.rename(self.root / "..data_tmp", self.root / "..data")
        for name in files:
            if not (self.root / name).is_symlink():
                os.symlink(f"..data/{name}", self.root / name)
        for link in self.root.iterdir():
            if link.is_symlink() and not link.name.startswith("..") and link.name not in files:
                link.unlink()
        if old:
            for f in (self.root / old).iterdir():
                f.unlink()
            (self.root / old).rmdir()


def pem_named(activation: float | None, name: str = "") -> tuple[str, bytes, str]:
    private = generate_private_key("ES256")
    kid = thumbprint_kid(private.public_key())
    return (ks.name_for(activation, kid) if activation is not None else name), private_pem(private), kid


async def test_a_secret_swap_is_followed(tmp_path, caplog):
    vol = SecretVolume(tmp_path / "keys")
    now = time.time()
    first_name, first, first_kid = pem_named(None, "signing-key.pem")
    vol.write({first_name: first})
    ring = KeyRing.from_dir(vol.root, retention=60)
    watcher = KeyWatcher(ring, 1)
    await watcher.check()
    assert list(ring.by_kid) == [first_kid]

    # same visible name, other content: only the contents tell
    _, other, other_kid = pem_named(None)
    vol.write({first_name: other})
    await watcher.check()
    assert list(ring.by_kid) == [other_kid] and ring.current.kid == other_kid

    # a scheduled key added: published, not signing
    new_name, new, new_kid = pem_named(now + 600)
    vol.write({first_name: other, new_name: new})
    await watcher.check()
    assert set(ring.by_kid) == {other_kid, new_kid} and ring.current.kid == other_kid
    assert [s.state for s in ring.states] == ["active", "published"]

    # a broken update is refused, once, and the keys in use stay
    vol.write({first_name: other, new_name: b"-----BEGIN PRIVATE KEY-----\ntruncated"})
    await watcher.check()
    await watcher.check()
    assert set(ring.by_kid) == {other_kid, new_kid}
    assert sum("keys_dir change refused" in r.message for r in caplog.records) == 1

    # the key withdrawn before it signs
    vol.write({first_name: other})
    await watcher.check()
    assert list(ring.by_kid) == [other_kid]
