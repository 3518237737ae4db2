"""Spans read back from the global tracer provider through an in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from decisioning.settings import ObservabilitySettings
from decisioning.telemetry.observability import build_tracer_provider


def collected_spans() -> Iterator[InMemorySpanExporter]:
    """Collect spans on the global provider (an SDK one, made here if none is set yet).

    Code under test takes its tracers from the global provider, which a process sets only once:
    the platform's own (``build_tracer_provider``), made here if no test set one before, records
    spans from the moment a processor is added, as here.
    """
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        # The platform's, as a service installs it, whichever test of a worker runs first.
        provider = build_tracer_provider(ObservabilitySettings(trace_exporter="none"), "tests")
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()
