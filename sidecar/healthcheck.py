"""`auth-sidecar healthcheck`: probe a running sidecar's HTTP port (a container's HEALTHCHECK).

The address comes from the settings `serve` reads (AUTH_SIDECAR_* and the config file), so a
changed `http_listen` moves the probe with it. Exit 0 when the probe answers 200, else 1
(Docker reserves 2). Standard library only past the settings: it runs every few seconds.
"""

from __future__ import annotations

import http.client
import os

# A wildcard listen address is reachable on loopback of the same family.
_LOOPBACK = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def probe_address(http_listen: str) -> tuple[str, int]:
    """HOST:PORT (or [V6]:PORT) of `http_listen` as a client can reach it from the same host."""
    host, _, port = http_listen.rpartition(":")
    host = host.strip("[]")
    return _LOOPBACK.get(host, host), int(port)


def serve_config_from_cmdline(path: str = "/proc/1/cmdline") -> str | None:
    """The `--config` of an `auth-sidecar serve` command line (a container's PID 1 by default).

    An image run as `... serve --config FILE` passes the file as an argument, which the
    healthcheck process (started beside it by the engine) cannot otherwise see.
    """
    try:
        with open(path, "rb") as fh:
            argv = [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        return None
    if "serve" not in argv:
        return None
    args = argv[argv.index("serve") + 1:]
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def config_path(explicit: str | None) -> str | None:
    """The config file: --config, else AUTH_SIDECAR_CONFIG, else the one PID 1 serves with."""
    return explicit or os.environ.get("AUTH_SIDECAR_CONFIG") or serve_config_from_cmdline()


def probe(host: str, port: int, path: str, timeout: float) -> tuple[bool, str]:
    """GET http://host:port/path; (answered 200, one line saying what happened)."""
    where = f"http://{'[' + host + ']' if ':' in host else host}:{port}{path}"
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"user-agent": "auth-sidecar-healthcheck"})
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{where}: {exc.__class__.__name__}: {exc}"
    finally:
        conn.close()
    return status == 200, f"{where}: {status}"
