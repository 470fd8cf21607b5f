"""OpenTelemetry tracing for the daemon: one span per collection cycle.

The provider is the daemon's own (not the global one) so tests and embedded uses never fight over it.
With `otlp_endpoint` set, spans go to an OTLP/HTTP collector in batches; extra span processors (the
SDK's in-memory exporter in tests) can be added.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from watchtower import __version__


def build_tracer_provider(
    service_name: str = "watchtower",
    otlp_endpoint: str | None = None,
    processors: Iterable[SpanProcessor] = (),
) -> TracerProvider:
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name, "service.version": __version__})
    )
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint, timeout=5)))
    for p in processors:
        provider.add_span_processor(p)
    return provider
