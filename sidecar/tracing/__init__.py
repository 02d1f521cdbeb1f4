"""OpenTelemetry tracing, off by default (settings `tracing`).

Nothing here is imported while tracing is off: sidecar/container.py imports this package
only when `tracing.enabled`, and then wraps the parts it built (the engine the ext_authz
adapters call, the token service's store, the token endpoint) with traced versions. With
tracing off the hot path is the untraced code itself, not a check of a flag."""

from __future__ import annotations

from config import ConfigError

REQUIRED = ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http.trace_exporter")


def require() -> None:
    """A ConfigError naming what to install when the `tracing` extra is missing."""
    import importlib.util

    for module in REQUIRED:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            raise ConfigError("tracing.enabled: the OpenTelemetry packages are not installed "
                              "(pip install 'auth-sidecar[tracing]')")
