from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config import ConfigError, load_settings

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"


def test_defaults_are_the_contract():
    s = load_settings(environ={})
    assert s.grpc_listen == "0.0.0.0:9191" and s.http_listen == "0.0.0.0:8080"
    assert s.store_url == "memory://" and s.issuer == "http://127.0.0.1:8080"
    assert s.admin_token is None and s.keys_dir is None


def test_environment_wins_over_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("issuer: https://file.example\ncache:\n  ttl_seconds: 10\n")
    s = load_settings(str(f), environ={"AUTH_SIDECAR_ISSUER": "https://env.example",
                                       "AUTH_SIDECAR_AUDIENCES": "a, b"})
    assert s.issuer == "https://env.example"
    assert s.cache.ttl_seconds == 10
    assert s.audiences == ("a", "b")


def test_config_file_from_environment(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("log_level: debug\n")
    assert load_settings(environ={"AUTH_SIDECAR_CONFIG": str(f)}).log_level == "debug"


def test_the_admin_clis_url_variable_is_not_a_setting():
    """`auth-sidecar admin` reads AUTH_SIDECAR_URL; an operator who exports it can still serve."""
    assert load_settings(environ={"AUTH_SIDECAR_URL": "http://127.0.0.1:8080"}).issuer == "http://127.0.0.1:8080"


def test_settings_are_immutable():
    s = load_settings(environ={})
    with pytest.raises(Exception):
        s.issuer = "x"  # type: ignore[misc]


@pytest.mark.parametrize("env,key", [
    ({"AUTH_SIDECAR_GRPC_LISTEN": "nope"}, "grpc_listen"),
    ({"AUTH_SIDECAR_CACHE__TTL_SECONDS": "-1"}, "cache.ttl_seconds"),
    ({"AUTH_SIDECAR_STORE_URL": "postgres://x"}, "store_url"),
    ({"AUTH_SIDECAR_TRUSTED_ISSUERS": "[{\"issuer\": \"x\"}]"}, "trusted_issuers.0"),
    ({"AUTH_SIDECAR_TRUSTED_ISSUERS": "{not json"}, "AUTH_SIDECAR_TRUSTED_ISSUERS"),
    ({"AUTH_SIDECAR_NO_SUCH_SETTING": "1"}, "no_such_setting"),
    ({"AUTH_SIDECAR_HEADERS__TENANT": "x tenant"}, "headers.tenant"),
])
def test_bad_value_names_the_key(env, key):
    with pytest.raises(ConfigError) as err:
        load_settings(environ=env)
    assert str(err.value).startswith(key)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_examples_load(example):
    load_settings(str(EXAMPLES / example), environ={})


def test_serve_with_bad_config_exits_with_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "sidecar.cli", "serve"], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "AUTH_SIDECAR_HTTP_LISTEN": "localhost:99999"}, timeout=30)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "http_listen" in lines[0]
