"""OpenTelemetry traces that follow one write across the services.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (the standard variable; the OTLP/HTTP
exporter reads it and its companions itself) is set: then `configure` installs
an SDK tracer provider that batches spans to that endpoint. Otherwise the API's
no-op tracer is in force and every call here costs next to nothing.

A write's trace: the registrar's `registrar write` span; the command record
carries its context in a W3C `traceparent` header; the promoter's
`promoter decide` span continues it and puts its own context on the events it
appends; the projector's `projector commit` span continues from those; the
registrar's `registrar answer` span (waiting for the committed outcome) is a
child of its write. One trace id from the request to its answer.
"""

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import context, propagate, trace
from opentelemetry.trace import Span

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
tracer = trace.get_tracer("modelog")


def configure(service: str) -> bool:
    """Export this process's spans over OTLP/HTTP if an endpoint is configured."""
    if not os.environ.get(ENDPOINT_VARIABLE):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", f"modelog-{service}")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


@contextmanager
def span(name: str, parent: context.Context | None = None, **attributes: str | int) -> Iterator[Span]:
    """A span, current inside the block; a child of `parent` (a context carried
    in from elsewhere) when given, else of the current span."""
    with tracer.start_as_current_span(name, context=parent,
                                      attributes={f"modelog.{k}": v for k, v in attributes.items()}) as current:
        yield current


def kafka_headers() -> list[tuple[str, bytes]]:
    """The current span's context as Kafka record headers (`traceparent`,
    `tracestate`); none when no span records."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(key, value.encode()) for key, value in carrier.items()]


def context_of(headers: Sequence[tuple[str, bytes]] | None) -> context.Context:
    """The trace context a record's headers carry (an empty one without)."""
    carrier = {key.lower(): (value or b"").decode("latin-1") for key, value in headers or ()
               if key.lower() in ("traceparent", "tracestate")}
    return propagate.extract(carrier)


def http_context(headers: dict[str, str]) -> context.Context:
    """The trace context an HTTP caller sent (`traceparent`), if any."""
    return propagate.extract({key.lower(): value for key, value in headers.items()})


@contextmanager
def spans_for(name: str, headers: Iterable[Sequence[tuple[str, bytes]] | None]) -> Iterator[int]:
    """One span named `name` continuing each distinct trace among these
    records' headers (a batch holds many writes' events), all open for the
    block; yields how many. Records that carry no trace open none."""
    parents = {parent for h in headers if (parent := _traceparent(h))}
    opened = [tracer.start_span(name, context=context_of([("traceparent", p.encode())])) for p in sorted(parents)]
    try:
        yield len(opened)
    finally:
        for each in opened:
            each.end()


def _traceparent(headers: Sequence[tuple[str, bytes]] | None) -> str | None:
    for key, value in headers or ():
        if key.lower() == "traceparent":
            return (value or b"").decode("latin-1")
    return None
