"""`auth-sidecar admin` against the real server: reads and updates print JSON (and the
record's ETag on stderr, for --if-match), and every failure (refused token, unknown id,
refused value, a record changed since its ETag, nothing listening) is one line on stderr
with exit code 1. Every admin command and flag says what it is for."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from harness.certificates import self_signed
from harness.net import free_port
from tests.support.admin_sidecar import admin_sidecar
from tests.support.oauth import ADMIN_TOKEN, login
from tests.support.processes import ROOT


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("admin-cli")
    s = admin_sidecar(tmp)
    yield s
    s.stop()


def cli(server_url: str, *args: str, token: str = ADMIN_TOKEN) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sidecar.cli", "admin", "--url", server_url, "--token", token, *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def one_line_failure(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("auth-sidecar admin: "), done.stderr
    for word in words:
        assert word in done.stderr, done.stderr


def test_reads_and_updates_print_json(server):
    app = server.admin.app()
    done = cli(server.http, "list-clients", "--limit", "1", "--", app.tenant)
    assert done.returncode == 0, done.stderr
    assert [c["client_id"] for c in json.loads(done.stdout)["items"]] == [app.client_id]
    assert json.loads(cli(server.http, "get-tenant", app.tenant).stdout)["id"] == app.tenant

    # options first, and `--` before the ids: a client_id may start with "-"
    done = cli(server.http, "update-client", "--scopes", "read, write", "--disable", "--", app.tenant, app.client_id)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["scopes"] == ["read", "write"] and answer["disabled"] is True
    assert login(server.http, app).json()["error"] == "invalid_client"
    enabled = cli(server.http, "update-client", "--enable", "--", app.tenant, app.client_id)
    assert json.loads(enabled.stdout)["disabled"] is False

    done = subprocess.run([sys.executable, "-m", "sidecar.cli", "admin", "--url", server.http, "--token", ADMIN_TOKEN,
                           "update-user", app.tenant, app.user_id, "--password", "-"], input="from stdin 123\n",
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert login(server.http, app, password="from stdin 123").status_code == 200


def test_if_match_updates_only_the_record_as_read(server):
    app = server.admin.app()
    read = cli(server.http, "get-client", app.tenant, app.client_id)
    etag = read.stderr.removeprefix("ETag: ").strip()  # stdout stays the JSON
    assert json.loads(read.stdout)["client_id"] == app.client_id and etag.startswith('"')
    done = cli(server.http, "update-client", "--scopes", "read", "--if-match", etag, "--", app.tenant, app.client_id)
    assert done.returncode == 0 and json.loads(done.stdout)["scopes"] == ["read"], done.stderr
    one_line_failure(cli(server.http, "update-client", "--disable", "--if-match", etag, "--", app.tenant,
                         app.client_id), "HTTP 412", "has changed")
    one_line_failure(cli(server.http, "delete", f"/admin/tenants/{app.tenant}/clients/{app.client_id}",
                         "--if-match", etag), "HTTP 412")
    assert json.loads(cli(server.http, "get-client", app.tenant, app.client_id).stdout)["disabled"] is False


def test_a_wrong_token_is_one_line(server):
    one_line_failure(cli(server.http, "list-tenants", token="wrong"), "HTTP 401", "token was refused")


def test_an_unknown_id_is_one_line(server):
    one_line_failure(cli(server.http, "get-tenant", "no-such-tenant"), "HTTP 404", "no-such-tenant")


def test_a_refused_value_is_one_line_naming_the_field(server):
    app = server.admin.app()
    done = cli(server.http, "update-client", "--grant-types", "implicit", "--", app.tenant, app.client_id)
    one_line_failure(done, "HTTP 400", "grant_types")


def test_nothing_listening_is_one_line():
    one_line_failure(cli(f"http://127.0.0.1:{free_port()}", "list-tenants"), "cannot connect", "connection refused")


def _admin_parser() -> argparse.ArgumentParser:
    from sidecar.cli import parser
    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["admin"]


def test_every_admin_command_and_flag_has_help():
    admin = _admin_parser()
    commands = next(a for a in admin._actions if isinstance(a, argparse._SubParsersAction))
    documented = {c.dest for c in commands._choices_actions if c.help}
    assert documented == set(commands.choices), set(commands.choices) - documented
    for action in admin._actions:
        assert action.help, action.dest
    for name, command in commands.choices.items():
        for action in command._actions:
            assert action.help, (name, action.dest)
    for name in ("create-user", "update-client", "update-user"):
        scopes = next(a for a in commands.choices[name]._actions if a.dest == "scopes")
        assert "spaces or commas" in scopes.help


def test_create_a_certificate_client(server, tmp_path):
    import base64

    pem, der = self_signed("self-signed")
    (tmp_path / "client.pem").write_text(pem)
    tenant = server.admin.app().tenant
    done = cli(server.http, "create-client", "--grant-types", "client_credentials", "--auth-method",
               "self_signed_tls_client_auth", "--certificate", str(tmp_path / "client.pem"), "--", tenant, "svc")
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert "client_secret" not in created  # authenticates with its certificate
    got = json.loads(cli(server.http, "get-client", tenant, created["client_id"]).stdout)
    assert got["jwks"]["keys"] == [{"kty": "EC", "x5c": [base64.b64encode(der).decode()]}]
    done = cli(server.http, "create-client", "--auth-method", "tls_client_auth", "--", tenant, "svc")
    one_line_failure(done, "HTTP 400", "tls_client_auth_subject_dn")
