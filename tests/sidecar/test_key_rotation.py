"""Signing keys rotated under load, without restart, on two replicas sharing Redis and one keys
folder: published -> active -> retired -> gone, zero 401 for a valid token, the new key in
the JWKS before any token signed by it exists, old tokens verifying until they expire."""

from __future__ import annotations

import base64
import calendar
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.admin_sidecar import admin_sidecar
from tests.support.load import CheckLoad
from tests.support.net import wait_until
from tests.support.oauth import ADMIN_TOKEN, login
from tests.support.processes import ROOT, Sidecar

PUBLISH_AHEAD = 5  # seconds: the new key is in every JWKS this long before it signs
LIFETIME = 8  # access tokens live this long; a retired key stays LIFETIME + LEEWAY
LEEWAY = 1

SETTINGS = {"AUTH_SIDECAR_KEYS__PUBLISH_AHEAD": str(PUBLISH_AHEAD), "AUTH_SIDECAR_KEYS__POLL_SECONDS": "0.2",
            "AUTH_SIDECAR_KEYS__MAX_TOKEN_LIFETIME": str(LIFETIME),
            "AUTH_SIDECAR_ACCESS_TOKEN_TTL_SECONDS": str(LIFETIME), "AUTH_SIDECAR_LEEWAY_SECONDS": str(LEEWAY),
            "AUTH_SIDECAR_PASSWORD_HASHING__MEMORY_KIB": "1024", "AUTH_SIDECAR_PASSWORD_HASHING__TIME_COST": "1"}


def kid_of(token: str) -> str:
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"]


def jwks_kids(sidecar: Sidecar) -> list[str]:
    return [k["kid"] for k in httpx.get(sidecar.http + "/.well-known/jwks.json", timeout=5).json()["keys"]]


def keys_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_SIDECAR_")}
    return subprocess.run([sys.executable, "-m", "sidecar.cli", "keys", *args], env={**clean, **env},
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, redis_server):
    tmp = tmp_path_factory.mktemp("rotation")
    keys = tmp / "keys"
    first = keys_cli("rotate", "--dir", str(keys), "--json", env=SETTINGS)
    assert first.returncode == 0, first.stderr
    pair = [admin_sidecar(tmp, SETTINGS, store_url=redis_server.url.replace("/0", "/6"), keys=keys, wait_ready=False)
            for _ in range(2)]
    for s in pair:
        s.wait_ready()
    yield pair, keys, json.loads(first.stdout)["kid"]
    for s in pair:
        assert s.stop() == 0


class Tokens:
    """Logins on both replicas in turn, from a thread: (token, kid, when asked, replica)."""

    def __init__(self, replicas: list[Sidecar], app) -> None:
        self.replicas, self.app = replicas, app
        self.issued: list[tuple[str, str, float, int]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            i = n % 2
            n += 1
            asked = time.time()
            r = login(self.replicas[i].http, self.app)
            if r.status_code != 200:
                self.failures.append(f"login on replica {i}: {r.status_code} {r.text[:200]}")
                continue
            token = r.json()["access_token"]
            self.issued.append((token, kid_of(token), asked, i))
            time.sleep(0.05)

    def pick(self):
        """A token that is still valid for a while (never one at the edge of its expiry)."""
        now = time.time()
        fresh = [t for t in self.issued[-20:] if t[2] + LIFETIME - 1.0 > now]
        if not fresh:
            return None
        token, kid, _, _ = fresh[(int(now * 1000)) % len(fresh)]
        return token, "/api/x", kid

    def start(self) -> "Tokens":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


def test_rotation_under_load_on_two_replicas(replicas):
    pair, keys, old_kid = replicas
    a, b = pair
    assert jwks_kids(a) == jwks_kids(b) == [old_kid]
    app = a.admin.app()

    seen: dict[tuple[int, str], float] = {}  # (replica, kid) -> first time its JWKS showed it
    stop_jwks = threading.Event()

    def watch_jwks() -> None:
        while not stop_jwks.is_set():
            for i, s in enumerate(pair):
                asked = time.time()
                for kid in jwks_kids(s):
                    seen.setdefault((i, kid), asked)
            time.sleep(0.05)

    jwks_thread = threading.Thread(target=watch_jwks, daemon=True)
    jwks_thread.start()
    tokens = Tokens(pair, app).start()
    wait_until(lambda: len(tokens.issued) >= 4, 30, "first tokens")
    load = CheckLoad([a.http, b.http], [a.grpc, b.grpc], tokens.pick).start(threads=2)
    try:
        rotated = keys_cli("rotate", "--dir", str(keys), "--json", env=SETTINGS)
        assert rotated.returncode == 0, rotated.stderr
        new_kid = json.loads(rotated.stdout)["kid"]
        # a second rotation before the first one activated is refused, plainly
        again = keys_cli("rotate", "--dir", str(keys), env=SETTINGS)
        assert again.returncode == 1 and "already scheduled" in again.stderr

        # published: in both JWKS at once, while the old key still signs
        wait_until(lambda: all((i, new_kid) in seen for i in (0, 1)), 5, "new key published on both")
        # tokens of the old key, never checked: their first Check comes after the switch
        held = [login(s.http, app).json()["access_token"] for s in pair]
        assert [kid_of(t) for t in held] == [old_kid, old_kid]
        # a second rotation before the first one activated is refused, plainly
        again = httpx.post(b.http + "/admin/keys/rotate", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        assert again.status_code == 409 and new_kid in again.json()["error_description"]
        # retired, from its activation on: old tokens, first checked now, verify on both replicas
        activates_at = calendar.timegm(time.strptime(json.loads(rotated.stdout)["activates_at"],
                                                     "%Y-%m-%dT%H:%M:%SZ"))
        wait_until(lambda: time.time() > activates_at + 0.2, PUBLISH_AHEAD + 5, "activation time")
        for token in held:
            for s in pair:
                r = httpx.get(s.http + "/ext_authz/api/x", headers={"authorization": f"Bearer {token}"})
                assert r.status_code == 200, r.text
        # active: both replicas sign with it (same schedule, no coordination)
        wait_until(lambda: {t[3] for t in tokens.issued if t[1] == new_kid} == {0, 1}, 15, "new key signs on both")
        # gone: out of both JWKS once its last token has expired
        wait_until(lambda: all(old_kid not in jwks_kids(s) for s in pair), LIFETIME + LEEWAY + 10, "old key gone")
        assert all(jwks_kids(s) == [new_kid] for s in pair)
    finally:
        outcomes = load.stop()
        tokens.stop()
        stop_jwks.set()
        jwks_thread.join(10)

    assert not tokens.failures, tokens.failures[:3]
    assert len(outcomes) > 100
    failed = [o for o in outcomes if o.status != 200]
    assert not failed, failed[:5]
    by_kid = {kid for o in outcomes for kid in [o.label]}
    assert by_kid == {old_kid, new_kid}  # the load checked tokens of both keys
    # the JWKS of each replica showed the new key before any token signed by it was asked for
    first_new = min(t[2] for t in tokens.issued if t[1] == new_kid)
    assert seen[(0, new_kid)] < first_new and seen[(1, new_kid)] < first_new
    assert first_new - max(seen[(0, new_kid)], seen[(1, new_kid)]) > PUBLISH_AHEAD - 1
    # the next `keys rotate` removes the file of the key that is gone
    pruned = keys_cli("rotate", "--dir", str(keys), "--json", env=SETTINGS)
    assert pruned.returncode == 0 and json.loads(pruned.stdout)["pruned"] == [old_kid]
    assert not any(old_kid in p.name for p in Path(keys).iterdir())


def test_admin_rotation(replicas):
    pair, keys, _ = replicas
    a, b = pair
    admin = httpx.Client(base_url=a.http, headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert httpx.post(a.http + "/admin/keys/rotate").status_code == 401
    # the previous test's last `keys rotate` wrote a key file: the replica reads the folder
    # every 0.2 s, and until it has, its list lacks the key that rotate finds in the folder
    on_disk = {p.name[len("YYYYmmddTHHMMSSZ-"):-len(".pem")] for p in Path(keys).glob("*.pem")}
    wait_until(lambda: on_disk <= {k["kid"] for k in admin.get("/admin/keys").json()["keys"]}, 10,
               "the replica knows every key file")
    pending = [k for k in admin.get("/admin/keys").json()["keys"] if k["state"] == "published"]
    r = admin.post("/admin/keys/rotate")
    if pending:  # the previous test's forced rotation may not have activated yet
        assert r.status_code == 409 and "already scheduled" in r.json()["error_description"]
        wait_until(lambda: not [k for k in admin.get("/admin/keys").json()["keys"] if k["state"] == "published"],
                   PUBLISH_AHEAD + 5, "pending key active")
        r = admin.post("/admin/keys/rotate")
    assert r.status_code == 201, r.text
    kid = r.json()["kid"]
    states = {k["kid"]: k["state"] for k in r.json()["keys"]}
    assert states[kid] == "published" and "active" in states.values()
    assert kid in jwks_kids(a)  # this replica at once
    wait_until(lambda: kid in jwks_kids(b), 5, "the other replica follows the folder")
    again = admin.post("/admin/keys/rotate")
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    wait_until(lambda: {k["kid"]: k["state"] for k in admin.get("/admin/keys").json()["keys"]}[kid] == "active",
               PUBLISH_AHEAD + 5, "admin-rotated key active")


def test_admin_rotation_without_keys_dir_is_a_conflict(tmp_path):
    s = admin_sidecar(tmp_path, ephemeral_key=True)
    try:
        r = httpx.post(s.http + "/admin/keys/rotate", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        assert r.status_code == 409 and "ephemeral" in r.json()["error_description"]
    finally:
        assert s.stop() == 0


def test_keys_rotate_command(tmp_path):
    folder = str(tmp_path / "keys")
    env = {**SETTINGS, "AUTH_SIDECAR_KEYS__PUBLISH_AHEAD": "600"}
    first = keys_cli("rotate", "--dir", folder, env=env)  # an empty folder: its first key signs at once
    assert first.returncode == 0 and "signs from" in first.stdout
    second = keys_cli("rotate", "--dir", folder, "--json", env=env)
    assert second.returncode == 0
    ahead = time.mktime(time.strptime(json.loads(second.stdout)["activates_at"], "%Y-%m-%dT%H:%M:%SZ")) \
        - time.mktime(time.gmtime())
    assert 590 < ahead <= 602
    third = keys_cli("rotate", "--dir", folder, env=env)
    assert third.returncode == 1 and "already scheduled" in third.stderr and len(third.stderr.splitlines()) == 1
    assert len(list(Path(folder).glob("*.pem"))) == 2


def test_memory_store_with_workers_refuses_to_start(tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_SIDECAR_")}
    out = subprocess.run([sys.executable, "-m", "sidecar.cli", "serve", "--workers", "2"],
                         env={**clean, "AUTH_SIDECAR_STORE_URL": "memory://"}, capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "workers" in lines[0] and "store_url" in lines[0], out.stderr
