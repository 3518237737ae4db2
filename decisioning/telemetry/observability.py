"""JSON logs without personal data, and OpenTelemetry tracing, configured by entry points only.

Every log line is one JSON object on stderr carrying the current span's ``trace_id`` and
``span_id`` and, when the caller passes them with ``extra=``, the ``decision_id`` and model
versions, so a decision, its trace and its log lines join up. Personal data is removed by a filter
on the handler, so it applies to every logger's records, including libraries': card-like digit
runs, e-mail addresses, phone numbers and account numbers are masked in messages and exceptions
(the one redaction of ``decisioning.conduct.redaction``), long free-text arguments (message text)
are replaced by their length, and fields named like personal data are dropped from ``extra``.
Exported spans go through the same redaction (:class:`RedactingSpanExporter`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    Event,
    ReadableSpan,
    SpanProcessor,
    SynchronousMultiSpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Sampler, SamplingResult
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, Status
from opentelemetry.util._decorator import _agnosticcontextmanager
from opentelemetry.util.types import Attributes

from decisioning.conduct.redaction import redact_text
from decisioning.core.errors import RiskPlatformError
from decisioning.settings import ObservabilitySettings, Settings

REDACTED = "[REDACTED]"
# Fields that hold personal data or raw inputs by their nature: dropped whatever their value.
SENSITIVE_FIELDS = frozenset(
    {
        "text",
        "message_text",
        "body",
        "quote",
        "request",
        "transaction",
        "email",
        "phone",
        "name",
        "customer_name",
        "card_number",
        "pan",
        "iban",
    }
)
# A %-argument with this many words is prose someone wrote (a message, a complaint), not a value.
PROSE_MIN_WORDS = 6
# Hex ids (trace, span, decision) contain digit runs that look like card numbers: keep them whole.
_IDENTIFIER = re.compile(r"\b(?:[a-z]{1,8}_)?(?=[0-9a-f]*[a-f])[0-9a-f]{16,64}\b")
# Pydantic echoes the rejected value into its error text; it may be the customer's message. Its
# repr (a string with both quotes, a dict, a list; shortened by pydantic to well under 300
# characters) ends at the last ", input_type=NAME]" of its line, which the value itself may also
# hold. Otherwise, a quoted string or one token. Every alternative is bounded: a long run of
# "input_value=" is read in linear time.
_ECHOED_INPUT = re.compile(
    r"input_value=(?:[^\n]{0,300}(?=, input_type=\w+\])"
    r"|(?:'[^']{0,300}'|\"[^\"]{0,300}\"|\S{1,300}?)(?=[,\]]))"
)
_LOG_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_THIRD_PARTY_LOGGERS = ("bentoml", "uvicorn", "uvicorn.error", "uvicorn.access", "circus")


class TracingConfigError(RiskPlatformError):
    """The observability settings ask for an exporter that cannot be built."""


def redact_line(text: str) -> str:
    """Mask personal data in a rendered line, leaving trace, span and decision ids intact."""
    text = _ECHOED_INPUT.sub(f"input_value={REDACTED}", text)
    pieces, last = [], 0
    for match in _IDENTIFIER.finditer(text):
        pieces.append(redact_text(text[last : match.start()]) + match.group())
        last = match.end()
    pieces.append(redact_text(text[last:]))
    return "".join(pieces)


def _mask_prose(value: object) -> object:
    """Strings of several words are someone's text; exceptions pass, their patterns masked."""
    if isinstance(value, str) and len(value.split()) >= PROSE_MIN_WORDS:
        return f"[TEXT {len(value)} chars]"
    return value


class PersonalDataFilter(logging.Filter):
    """Rewrites each record so that no personal data can reach a handler's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict):
            record.args = {key: _mask_prose(value) for key, value in record.args.items()}
        elif record.args:
            record.args = tuple(_mask_prose(value) for value in record.args)
        record.msg, record.args = redact_line(record.getMessage()), None
        if record.exc_info:
            record.exc_text = redact_line(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact_line(record.stack_info)
        for key in _extra_fields(record):
            value = getattr(record, key)
            if key.lower() in SENSITIVE_FIELDS:
                setattr(record, key, REDACTED)
            elif isinstance(value, str):
                setattr(record, key, redact_line(value))
        return True


class ClientErrorFilter(logging.Filter):
    """A refused request is the caller's mistake: INFO with its reason, never ERROR or a traceback.

    BentoML logs every exception of a route at ERROR with its traceback, validation errors
    included, and a pydantic traceback quotes the input (a form body's whole text is a field
    name there). Such a record becomes one INFO line naming the fields and error types only, so
    the runbook's "level ERROR" triage sees failures of ours and no request body is written.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        status = client_error_status(error)
        if status is None:
            return True
        where = record.args[0] if isinstance(record.args, tuple) and record.args else "a route"
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        record.msg, record.args = "refused %s: %d %s", (where, status, refusal_reason(error))
        record.exc_info, record.exc_text = None, None
        return True


def client_error_status(error: BaseException | None) -> int | None:
    """The 4xx status a route answers for this exception, None for a failure of ours."""
    from pydantic import ValidationError

    if isinstance(error, ValidationError):
        return 400  # what BentoML answers for a body that fails its model
    code = getattr(getattr(error, "error_code", None), "value", None)
    return code if isinstance(code, int) and 400 <= code < 500 else None


_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def refusal_reason(error: BaseException | None) -> str:
    """Which fields failed and how, without their values; an unknown key is not quoted either."""
    from pydantic import ValidationError

    if not isinstance(error, ValidationError):
        return type(error).__name__
    problems = []
    for item in error.errors(include_input=False, include_context=False)[:10]:
        where = ".".join(
            str(part) if isinstance(part, int) or _FIELD_NAME.match(part) else "<key>"
            for part in item["loc"]
        )
        problems.append(f"{where or '<body>'}:{item['type']}")
    return f"{error.error_count()} validation error(s): {', '.join(problems)}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace context and extras."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "service": self.service_name,
            "message": record.getMessage(),
            **_trace_context(),
        }
        line.update({key: getattr(record, key) for key in _extra_fields(record)})
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(
    service_name: str, level: int | str = logging.INFO, stream: TextIO | None = None
) -> logging.Handler:
    """Send every logger's records to one redacting JSON handler on stderr; safe to call twice.

    BentoML and uvicorn install their own text handlers in a worker; those are removed and their
    loggers propagate to ours, so a service writes one format only.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service_name))
    handler.addFilter(ClientErrorFilter())  # first: it drops the traceback the next would keep
    handler.addFilter(PersonalDataFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _THIRD_PARTY_LOGGERS:
        third_party = logging.getLogger(name)
        third_party.handlers.clear()
        third_party.propagate = True
    # bentoml.access logs each request with its status and latency; uvicorn's line says less.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    return handler


def span_exporter(settings: ObservabilitySettings) -> SpanExporter | None:
    """The exporter the profile asks for: none, console (stderr) or OTLP over HTTP."""
    if settings.trace_exporter == "none":
        return None
    if settings.trace_exporter == "console":
        return ConsoleSpanExporter(out=sys.stderr)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    endpoint = settings.otlp_endpoint.rstrip("/")
    if not endpoint:
        # The exporter then reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT itself.
        return OTLPSpanExporter()
    if not endpoint.startswith(("http://", "https://")):
        raise TracingConfigError(f"otlp_endpoint {endpoint!r} is not an http(s) URL")
    return OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")


class RedactingSpanExporter(SpanExporter):
    """Spans pass to ``exporter`` with personal data masked as in the log lines, or dropped.

    A span's exception event holds the exception's message and traceback, and its status the
    message again (the SDK's defaults wherever a span ends in an exception); a message may quote
    a request (a card number, a customer's e-mail). The collector gets them as a log line would:
    string values through :func:`redact_line`, attributes named like personal data replaced by
    ``[REDACTED]``. Span names, ids, kinds and times pass unchanged.
    """

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.exporter.export([redact_span(span) for span in spans])

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.exporter.force_flush(timeout_millis)


def redact_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of ``span`` whose attributes, events, links and status description are redacted;
    the counts of what the SDK's limits dropped are kept."""
    status = span.status
    if status.description:
        status = Status(status.status_code, redact_line(status.description))
    events = BoundedList.from_seq(
        None,
        [
            Event(
                event.name, _redacted(event.attributes, event.dropped_attributes), event.timestamp
            )
            for event in span.events
        ],
    )
    events.dropped = span.dropped_events
    links = BoundedList.from_seq(
        None,
        [
            Link(link.context, _redacted(link.attributes, link.dropped_attributes))
            for link in span.links
        ],
    )
    links.dropped = span.dropped_links
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_redacted(span.attributes, span.dropped_attributes),
        events=events,
        links=links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _redacted(attributes: Attributes, dropped: int) -> BoundedAttributes:
    redacted = BoundedAttributes(attributes=_redact(dict(attributes or {})), immutable=False)
    redacted.dropped = dropped
    return redacted


def _redact(value: Any) -> Any:
    """Strings through :func:`redact_line`, bytes as the text they hold, mappings and sequences
    item by item, a key named like personal data's value replaced."""
    if isinstance(value, str):
        return redact_line(value)
    if isinstance(value, bytes):
        return redact_line(value.decode("utf-8", errors="replace"))
    if isinstance(value, Mapping):
        return {key: REDACTED if _sensitive(key) else _redact(item) for key, item in value.items()}
    if isinstance(value, Sequence):
        return tuple(_redact(item) for item in value)
    return value


def _sensitive(key: object) -> bool:
    return isinstance(key, str) and key.rsplit(".", 1)[-1].lower() in SENSITIVE_FIELDS


class _Receivers(SynchronousMultiSpanProcessor):
    """A provider's span processors, noting whether there is any: spans with none go nowhere."""

    def __init__(self) -> None:
        super().__init__()
        self.any = False

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        super().add_span_processor(span_processor)
        self.any = True


class RecordedWhenReceived(Sampler):
    """``sampler``'s choice once the provider has a span processor; until then, no span recorded.

    A span nobody receives still costs its attributes, events and end (~15 us of CPU each, several
    a decision, issue 19). Unrecorded, it keeps real trace and span ids, so log lines and
    ``RiskDecision.trace_id`` still join up, and a caller's ``traceparent`` still carries through.
    """

    def __init__(self, receivers: _Receivers, sampler: Sampler) -> None:
        self._receivers = receivers
        self._sampler = sampler

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        sampler = self._sampler if self._receivers.any else ALWAYS_OFF
        return sampler.should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return f"RecordedWhenReceived{{{self._sampler.get_description()}}}"


class _UnrecordedChildren(trace.Tracer):
    """``tracer``, except that while no span processor receives spans, a span started under one
    of this process's (none is recorded then) is that span again: no new span is made where
    none could be recorded.

    :class:`RecordedWhenReceived` records nothing until a processor exists, so the child of such
    a span would go unrecorded too; making it anyway cost ~5 us of CPU each (its ids, the
    sampler, the context's attach and detach), five times a served decision with no exporter
    (issue 19). Attributes set on the span given instead are dropped, as on any unrecorded span,
    and log lines carry its span id. Once a processor exists, or under a remote parent (a
    caller's ``traceparent``) or an explicit ``context``, the SDK decides, span by span.
    """

    def __init__(self, tracer: trace.Tracer, receivers: _Receivers) -> None:
        self._tracer = tracer
        self._receivers = receivers

    def __getattr__(self, name: str) -> Any:  # the SDK tracer's sampler, resource, ...
        return getattr(self._tracer, name)

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self._tracer.start_span(*args, **kwargs)

    @_agnosticcontextmanager  # the API's own: also a decorator of coroutine functions
    def start_as_current_span(
        self, name: str, context: Context | None = None, *args: Any, **kwargs: Any
    ) -> Iterator[trace.Span]:
        if context is None and not self._receivers.any:
            current = trace.get_current_span()
            span_context = current.get_span_context()
            if (
                isinstance(current, trace.NonRecordingSpan)
                and span_context.is_valid
                and not span_context.is_remote
            ):
                yield current
                return
        with self._tracer.start_as_current_span(name, context, *args, **kwargs) as span:
            yield span


class _Provider(TracerProvider):
    def __init__(self, receivers: _Receivers, **kwargs: Any) -> None:
        super().__init__(active_span_processor=receivers, **kwargs)
        self._receivers = receivers

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _UnrecordedChildren(super().get_tracer(*args, **kwargs), self._receivers)


def build_tracer_provider(settings: ObservabilitySettings, service_name: str) -> TracerProvider:
    """A provider that always makes real trace ids, exporting only where the profile says.

    Spans are recorded only once a processor receives them (:class:`RecordedWhenReceived`); then
    the sampler is OpenTelemetry's own reading of ``OTEL_TRACES_SAMPLER`` and
    ``OTEL_TRACES_SAMPLER_ARG`` (a caller's sampled ``traceparent`` is followed, every other trace
    recorded, by default; ``parentbased_traceidratio`` with a ratio keeps a share). Under a
    span of this process, while nothing receives spans, no child span is made
    (:class:`_UnrecordedChildren`).
    """
    receivers = _Receivers()
    # The SDK reads the environment's sampler when none is given; a provider built to ask it.
    chosen = TracerProvider(shutdown_on_exit=False).sampler
    provider = _Provider(
        receivers,
        sampler=RecordedWhenReceived(receivers, chosen),
        resource=Resource.create({"service.name": service_name}),
    )
    exporter = span_exporter(settings)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(RedactingSpanExporter(exporter)))
    return provider


def configure_tracing(settings: Settings, service_name: str) -> TracerProvider:
    """Install the process-wide tracer provider from the profile's ``observability`` section.

    OpenTelemetry keeps the first provider a process installs and ignores later ones, so call
    this once, from the entry point (a service's ``__init__``, a job's command).
    """
    provider = build_tracer_provider(settings.observability, service_name)
    trace.set_tracer_provider(provider)
    return provider


def flush_spans(provider: TracerProvider | None = None, timeout_s: float = 5.0) -> bool:
    """Export the spans still batched (the global provider's by default), as a service stops: a
    worker's exit does not run the provider's own ``atexit`` flush, and the last seconds' spans
    (the demo's every one) were lost.

    Waits at most ``timeout_s``: the SDK's batch processor ignores its own timeout and blocks on
    the exporter (~10 s against a collector that does not answer), inside a stop's grace period.
    False, with a warning, if the export had not finished by then (it goes on in the background).
    """
    if provider is None:
        current = trace.get_tracer_provider()
        if not isinstance(current, TracerProvider):  # the API's no-op one: nothing batched
            return True
        provider = current
    flushing = threading.Thread(target=provider.force_flush, name="flush-spans", daemon=True)
    flushing.start()
    flushing.join(timeout_s)
    if flushing.is_alive():
        logging.getLogger(__name__).warning(
            "spans not exported within %.0f s of the stop: the exporter did not answer", timeout_s
        )
        return False
    return True


def _trace_context() -> dict[str, str]:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {
        "trace_id": trace.format_trace_id(context.trace_id),
        "span_id": trace.format_span_id(context.span_id),
    }


def _extra_fields(record: logging.LogRecord) -> list[str]:
    return [key for key in vars(record) if key not in _LOG_RECORD_FIELDS]
