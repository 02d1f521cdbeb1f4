"""The `auth-sidecar` command."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from config import ConfigError, load_settings
from config.settings import Settings


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    try:
        return load_settings(getattr(args, "config", None), overrides={k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        print(f"auth-sidecar: config error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(args: argparse.Namespace) -> int:
    import functools
    import os
    import signal

    # SIGHUP reloads once a worker serves; until then it is ignored (workers inherit that)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    settings = _settings(args, workers=args.workers)
    if settings.workers > 1 and settings.store_url.startswith("memory://"):
        print(f"auth-sidecar: config error: workers: {settings.workers} workers cannot share store_url "
              "memory:// (each would keep its own tenants, clients and tokens); use a redis:// store_url "
              "or workers: 1", file=sys.stderr)
        return 2
    if settings.tracing.enabled:
        from sidecar.tracing import require

        try:
            require()
        except ConfigError as exc:
            print(f"auth-sidecar: config error: {exc}", file=sys.stderr)
            return 2
    try:
        from sidecar.container import load_keyring  # validate keys before forking workers
        if settings.keys_dir:
            load_keyring(settings)
    except ValueError as exc:
        print(f"auth-sidecar: config error: keys_dir: {exc}", file=sys.stderr)
        return 2
    from sidecar import server
    from sidecar.reload import SettingsSource

    source = SettingsSource(args.config or os.environ.get("AUTH_SIDECAR_CONFIG"),
                            {"workers": args.workers} if args.workers is not None else {})
    if settings.workers > 1:
        from sidecar.workers import run_workers
        return run_workers(settings, settings.workers, functools.partial(server.run, source=source))
    server.run(settings, source=source)
    return 0


def cmd_token_mint(args: argparse.Namespace) -> int:
    settings = _settings(args)
    from sidecar.container import load_keyring
    from sidecar.oauth.issuer import TokenIssuer

    keyring = load_keyring(settings)
    if keyring.ephemeral:
        print("auth-sidecar: warning: no keys_dir, the token is signed with a throwaway key", file=sys.stderr)
    issuer = TokenIssuer(keyring, settings.issuer, args.aud or settings.accepted_audiences[0],
                         settings.max_token_lifetime)
    issued = issuer.access_token(subject=args.sub, client_id=args.client_id, tenant=args.tenant,
                                 scope=" ".join(args.scope or []).split(), ttl=args.ttl, org_id=args.org,
                                 project_ids=args.project or [])
    print(json.dumps({"access_token": issued.token, "claims": issued.claims}) if args.json else issued.token)
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    import time

    from authz.keys import RotationPending, rotate

    settings = _settings(args)
    folder = args.dir or settings.keys_dir
    if not folder:
        print("auth-sidecar: keys rotate needs --dir or keys_dir", file=sys.stderr)
        return 2
    try:
        done = rotate(folder, args.alg or settings.signing_alg, settings.keys.publish_ahead,
                      settings.signing_key_retention, force=args.force)
    except RotationPending as exc:
        print(f"auth-sidecar: keys rotate: {exc}; wait for it, or pass --force", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"auth-sidecar: keys rotate: {exc}", file=sys.stderr)
        return 1
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(done.activates_at))
    print(json.dumps({"file": str(done.file), "kid": done.kid, "activates_at": when, "pruned": list(done.pruned)})
          if args.json else f"{done.file}\nkid {done.kid} is published now and signs from {when}"
          + "".join(f"\nremoved {kid} (retired, its last token has expired)" for kid in done.pruned))
    return 0


def cmd_keys_generate(args: argparse.Namespace) -> int:
    from authz.keys import write_new_key

    settings = _settings(args)
    folder = args.dir or settings.keys_dir
    if not folder:
        print("auth-sidecar: keys generate needs --dir or keys_dir", file=sys.stderr)
        return 2
    print(write_new_key(folder, args.alg or settings.signing_alg))
    return 0


def cmd_healthcheck(args: argparse.Namespace) -> int:
    from sidecar.healthcheck import config_path, probe, probe_address

    try:  # exit 1, not serve's 2: a container engine reserves 2
        settings = load_settings(config_path(args.config))
    except ConfigError as exc:
        print(f"unhealthy: config error: {exc}")
        return 1
    healthy, what = probe(*probe_address(settings.http_listen), args.path, args.timeout)
    print(("healthy: " if healthy else "unhealthy: ") + what)
    return 0 if healthy else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="auth-sidecar", description="Envoy ext_authz server and OAuth 2.0 token service")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the ext_authz server and the token service")
    serve.add_argument("--config", help="YAML settings file (also AUTH_SIDECAR_CONFIG)")
    serve.add_argument("--workers", type=int, help="worker processes sharing the ports (1 to 64; more than 1 needs a "
                                                   "Redis store_url)")
    serve.set_defaults(func=cmd_serve)

    health = sub.add_parser("healthcheck", help="probe the running sidecar's HTTP address (exit 0 healthy, 1 not)")
    health.add_argument("--config", help="as for serve; default AUTH_SIDECAR_CONFIG or the --config of PID 1's serve")
    health.add_argument("--path", default="/readyz", choices=["/readyz", "/healthz"],
                        help="/readyz (default: keys loaded, store answers, not draining) or /healthz (process up)")
    health.add_argument("--timeout", type=float, default=2.0, help="seconds")
    health.set_defaults(func=cmd_healthcheck)

    token = sub.add_parser("token", help="access tokens").add_subparsers(dest="token_command", required=True)
    mint = token.add_parser("mint", help="sign an access token with the configured keys")
    mint.add_argument("--config")
    mint.add_argument("--sub", required=True)
    mint.add_argument("--tenant")
    mint.add_argument("--org")
    mint.add_argument("--project", action="append", help="repeat for several projects")
    mint.add_argument("--scope", action="append", help="space-separated scopes; may repeat")
    mint.add_argument("--ttl", type=int, default=900)
    mint.add_argument("--aud")
    mint.add_argument("--client-id", default="cli")
    mint.add_argument("--json", action="store_true", help="print the claims too")
    mint.set_defaults(func=cmd_token_mint)

    keys = sub.add_parser("keys", help="signing keys").add_subparsers(dest="keys_command", required=True)
    gen = keys.add_parser("generate", help="write a new private key that signs at once "
                                                "(a new folder; a running deployment uses rotate)")
    gen.add_argument("--config")
    gen.add_argument("--dir")
    gen.add_argument("--alg", choices=["ES256", "RS256", "EdDSA"])
    gen.set_defaults(func=cmd_keys_generate)
    rot = keys.add_parser("rotate", help="schedule a new signing key keys.publish_ahead from now; "
                                         "remove keys whose last token has expired")
    rot.add_argument("--config")
    rot.add_argument("--dir")
    rot.add_argument("--alg", choices=["ES256", "RS256", "EdDSA"])
    rot.add_argument("--force", action="store_true", help="even when a scheduled key has not activated yet")
    rot.add_argument("--json", action="store_true")
    rot.set_defaults(func=cmd_keys_rotate)

    from sidecar.admin.cli import add_parser
    add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
