"""The Check span: the engine the ext_authz adapters call (gRPC and HTTP mode alike), with a
span around each decision. The span continues the trace of the request Envoy checks: its
parent is the W3C `traceparent` (and `tracestate`) among the checked request's headers.

Only built when tracing is on (sidecar/container.py); the engine itself stays untraced."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import SpanKind, Tracer, use_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from authz.engine import Checked, Engine
from authz.now_or_later import Later, NowOrLater, settled
from authz.request import AuthRequest

SPAN = "ext_authz.check"
_PROPAGATOR = TraceContextTextMapPropagator()


class TracedEngine:
    """Answers as `engine` does (now or later); everything else is the engine's own."""

    def __init__(self, engine: Engine, tracer: Tracer) -> None:
        self._engine = engine
        self._tracer = tracer

    def __getattr__(self, name: str) -> Any:  # mutator, metrics …: read live (a reload swaps them)
        return getattr(self._engine, name)

    async def check(self, req: AuthRequest, mode: str = "grpc") -> Checked:
        return await settled(self.check_now(req, mode))

    def check_now(self, req: AuthRequest, mode: str = "grpc") -> NowOrLater[Checked]:
        span = self._tracer.start_span(SPAN, context=_PROPAGATOR.extract(req.headers), kind=SpanKind.SERVER)
        metrics = self._engine.metrics
        hits = metrics.cache_hits  # counted by the engine on a hit only: one loop, no race
        found = self._engine.check_now(req, mode)
        if type(found) is Later:
            return self._later(span, found, mode)  # type: ignore[arg-type]
        _end(span, found, mode, metrics.cache_hits != hits)  # type: ignore[arg-type]
        return found

    @staticmethod
    async def _later(span: Any, pending: Any, mode: str) -> Checked:
        with use_span(span, end_on_exit=False):  # what the verification traces is its child
            found = await pending
        _end(span, found, mode, False)
        return found


def _end(span: Any, found: Checked, mode: str, cache_hit: bool) -> None:
    """All attributes in one call, made only for a recorded span: the SDK validates each value it is given."""
    if not span.is_recording():
        return span.end()
    decision = found[0]
    span.set_attributes({"authz.mode": mode, "authz.decision": "allow" if decision.allowed else "deny",
                         "authz.status": decision.status, "authz.reason": decision.reason,
                         "authz.cache_hit": cache_hit})
    span.end()
