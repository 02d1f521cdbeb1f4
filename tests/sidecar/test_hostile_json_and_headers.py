"""Bodies and headers nobody should send, from outside: JSON nested 1,000 deep (Python's
parser raised RecursionError: a 500 and a traceback), `Authorization: Basic` that is not ASCII
or not UTF-8, other undecodable headers. Each is a 4xx with the RFC error naming the problem;
nothing is logged as a traceback and the service keeps answering everyone else."""

from __future__ import annotations

import base64

import httpx
import pytest

from authz.keys import KeyRing
from tests.support.admin_sidecar import admin_sidecar
from tests.support.oauth import ADMIN_TOKEN
from tests.support.tokens import b64

DEEP = b"[" * 1000 + b"]" * 1000
DEEP_OBJECT = b'{"a":' * 1000 + b"1" + b"}" * 1000


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    s = admin_sidecar(tmp)
    s.app = s.admin.app(grant_types=("client_credentials", "password"))
    s.ring = KeyRing.from_dir(str(tmp / "keys"))
    yield s
    assert "Traceback" not in s.logs() and '"exc"' not in s.logs()
    s.stop()


def still_serving(svc) -> None:
    assert httpx.get(svc.http + "/readyz").status_code == 200
    r = httpx.post(svc.http + "/oauth/token", auth=(svc.app.client_id, svc.app.client_secret),
                   data={"grant_type": "client_credentials"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT, b'{"grant_type": ' + DEEP + b"}"], ids=["array", "object", "value"])
def test_deep_json_is_invalid_request(svc, path, body):
    r = httpx.post(svc.http + path, content=body, headers={"content-type": "application/json"},
                   auth=(svc.app.client_id, svc.app.client_secret))
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_request" and "nests deeper than" in r.json()["error_description"]
    still_serving(svc)


def test_brackets_inside_strings_do_not_count(svc):
    r = httpx.post(svc.http + "/oauth/token", json={"grant_type": "client_credentials", "scope": "[" * 2000},
                   auth=(svc.app.client_id, svc.app.client_secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"


@pytest.mark.parametrize("path", ["/admin/tenants", "/admin/tenants/{t}/users"])
def test_deep_json_to_the_admin_api_is_400(svc, path):
    r = httpx.post(svc.http + path.format(t=svc.app.tenant), content=DEEP_OBJECT,
                   headers={"authorization": f"Bearer {ADMIN_TOKEN}", "content-type": "application/json"})
    assert r.status_code == 400 and "nests deeper than" in r.json()["error_description"]
    still_serving(svc)


BASICS = {
    "latin-1 bytes": b"Basic \xe9t\xe9:secret",
    "utf-8 bytes": "Basic é:ü".encode(),
    "base64 of non-utf-8": b"Basic " + base64.b64encode(b"\xff\xfe:\xfd"),
    "no colon": b"Basic " + base64.b64encode(b"justanid"),
}


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
@pytest.mark.parametrize("header", BASICS.values(), ids=BASICS.keys())
def test_undecodable_basic_is_invalid_client(svc, path, header):
    r = httpx.post(svc.http + path, headers={"authorization": header},
                   data={"grant_type": "client_credentials", "token": "x"})
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_client" and r.headers["www-authenticate"].startswith("Basic")
    still_serving(svc)


def test_control_bytes_refused_by_the_parser_get_an_rfc_error_too(svc):
    r = httpx.post(svc.http + "/oauth/token", headers={"authorization": b"Basic \x01\x02"},
                   data={"grant_type": "client_credentials"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    still_serving(svc)


def test_other_undecodable_headers_are_4xx_with_an_rfc_error(svc):
    auth = (svc.app.client_id, svc.app.client_secret)
    r = httpx.post(svc.http + "/oauth/token", auth=auth, content=b"grant_type=client_credentials",
                   headers={"content-type": b"application/\xe9json"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = httpx.post(svc.http + "/oauth/token", headers={"authorization": b"Bearer \xe9\xff.x.y"},
                   data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = httpx.post(svc.http + "/admin/tenants", json={"id": "x", "name": "x"},
                   headers={"authorization": b"Bearer \xe9\xff"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    r = httpx.get(svc.http + "/ext_authz/x", headers={"authorization": b"Bearer \xe9\xff", "x-auth-token": b"\xff"})
    assert r.status_code == 401 and "invalid_token" in r.headers["www-authenticate"]
    still_serving(svc)


def test_a_token_with_deep_json_is_refused_not_an_internal_error(svc):
    deep_token = f"{b64(DEEP)}.{b64(DEEP)}.{b64(b'sig')}"
    r = httpx.get(svc.http + "/ext_authz/x", headers={"authorization": f"Bearer {deep_token}"})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    r = httpx.post(svc.http + "/oauth/token",
                   data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": deep_token})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    still_serving(svc)
