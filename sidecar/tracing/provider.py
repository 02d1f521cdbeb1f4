"""The tracer provider of one worker: a resource naming the service, a parent-based ratio
sampler and the configured exporter behind a batch processor (exports leave on its own
thread, never on the event loop)."""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Tracer

from config.settings import TracingSettings

SCOPE = "auth-sidecar"


class Tracing:
    """The provider and its tracer; `close` flushes what is still queued (on shutdown)."""

    def __init__(self, settings: TracingSettings, exporter: SpanExporter | None = None) -> None:
        self.provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}),
                                       sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)))
        exporter = exporter or _exporter(settings)
        if exporter is not None:
            self.provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
        self.tracer: Tracer = self.provider.get_tracer(SCOPE)

    async def close(self) -> None:
        await asyncio.to_thread(self.provider.shutdown)  # flushes: may wait on the collector


def _exporter(settings: TracingSettings) -> SpanExporter | None:
    if settings.exporter == "console":
        return ConsoleSpanExporter()
    if settings.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=settings.endpoint) if settings.endpoint else OTLPSpanExporter()
    return None
