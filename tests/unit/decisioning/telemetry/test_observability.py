"""JSON logs that carry the trace and never personal data; the exporter each profile asks for."""

import asyncio
import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel, TypeAdapter, ValidationError

from decisioning.core.events import TextEvent
from decisioning.settings import ObservabilitySettings
from decisioning.telemetry.observability import (
    RedactingSpanExporter,
    TracingConfigError,
    build_tracer_provider,
    configure_logging,
    flush_spans,
    redact_line,
    span_exporter,
)

CARD = "4111 1111 1111 1111"
EMAIL = "jane.doe@example.co.uk"
PHONE = "+44 7700 900123"
MESSAGE = "My husband died last month and I cannot pay the loan, please call me"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Route every logger to a JSON handler writing into a buffer; restore logging afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    configure_logging("test_service", stream=buffer)
    yield buffer
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_each_line_is_json_with_the_decision_and_model_versions(log_lines: io.StringIO) -> None:
    # given a decision logged by library code with its ids passed as extras
    logger = logging.getLogger("decisioning.core.engine")

    # when it logs
    logger.info(
        "decided decision_id=%s",
        "dec_0123456789abcdef0123456789abcdef",
        extra={"decision_id": "dec_0123456789abcdef0123456789abcdef", "model_versions": "fd:3"},
    )

    # then the line is JSON carrying the service, the decision id and the model versions intact
    (line,) = lines(log_lines)
    assert line["service"] == "test_service" and line["level"] == "INFO"
    assert line["decision_id"] == "dec_0123456789abcdef0123456789abcdef"
    assert line["model_versions"] == "fd:3"
    assert line["message"] == "decided decision_id=dec_0123456789abcdef0123456789abcdef", (
        "hex ids contain card-like digit runs but must survive redaction whole"
    )


def test_lines_inside_a_span_carry_its_trace_and_span_ids(log_lines: io.StringIO) -> None:
    # given a real tracer provider (no exporter)
    tracer = build_tracer_provider(ObservabilitySettings(trace_exporter="none"), "t").get_tracer(
        "test"
    )

    # when a line is logged inside a span
    with tracer.start_as_current_span("decision") as span:
        logging.getLogger("decisioning").warning("inside")
        context = span.get_span_context()

    # then the line names that span's trace and span
    (line,) = lines(log_lines)
    assert line["trace_id"] == f"{context.trace_id:032x}"
    assert line["span_id"] == f"{context.span_id:016x}"


def test_card_numbers_emails_and_phones_never_reach_a_line(log_lines: io.StringIO) -> None:
    # when personal data is logged as arguments, in the format string and in an extra
    logger = logging.getLogger("pipelines.some_job")
    logger.info("card %s mailed %s", CARD, EMAIL, extra={"contact": f"call {PHONE}"})
    logger.error(f"customer {EMAIL} paid with {CARD.replace(' ', '')} from {PHONE}")

    # then no line holds any of them, and the line says what was masked
    output = log_lines.getvalue()
    for secret in (CARD, CARD.replace(" ", ""), EMAIL, PHONE, "7700 900123"):
        assert secret not in output, f"{secret!r} leaked into a log line"
    assert "[CARD]" in output and "[EMAIL]" in output and "[PHONE]" in output


def test_message_text_never_reaches_a_line(log_lines: io.StringIO) -> None:
    # when a customer's message is logged as an argument, as an extra, or echoed by pydantic
    logger = logging.getLogger("bentos.service")
    logger.info("assessing %s", MESSAGE)
    logger.info("assessing", extra={"text": MESSAGE, "quote": "cannot pay"})
    try:
        TextEvent.model_validate({"message_id": "m1", "received_at": "bad", "text": MESSAGE})
    except ValidationError:
        logger.exception("refused a message")
    try:
        TextEvent.model_validate({"message_id": "m1", "received_at": MESSAGE, "text": "x"})
    except ValidationError:
        logger.exception("refused a message")

    # then the text appears nowhere, only its length
    output = log_lines.getvalue()
    assert "husband" not in output and "cannot pay" not in output, output
    assert f"[TEXT {len(MESSAGE)} chars]" in output
    assert all(line["level"] for line in lines(log_lines)), "every line is still JSON"


def test_library_loggers_that_do_not_propagate_are_taken_over(log_lines: io.StringIO) -> None:
    # given BentoML's logger, which its own config detaches from the root
    bentoml_logger = logging.getLogger("bentoml")

    # when it logs after configure_logging
    bentoml_logger.warning("card %s", CARD)

    # then its line is ours: JSON and redacted
    (line,) = lines(log_lines)
    assert line["logger"] == "bentoml" and CARD not in str(line["message"])


@pytest.mark.parametrize(
    ("exporter", "endpoint", "expected"),
    [
        ("none", "", type(None)),
        ("console", "", ConsoleSpanExporter),
        ("otlp", "http://collector:4318", OTLPSpanExporter),
        ("otlp", "", OTLPSpanExporter),
    ],
)
def test_the_profile_chooses_the_span_exporter(
    exporter: str, endpoint: str, expected: type
) -> None:
    settings = ObservabilitySettings(trace_exporter=exporter, otlp_endpoint=endpoint)  # type: ignore[arg-type]

    assert isinstance(span_exporter(settings), expected)


def test_an_otlp_endpoint_that_is_not_a_url_is_refused() -> None:
    settings = ObservabilitySettings(trace_exporter="otlp", otlp_endpoint="collector:4318")

    with pytest.raises(TracingConfigError, match="not an http"):
        span_exporter(settings)


def test_spans_are_recorded_only_once_a_processor_receives_them() -> None:
    # given the provider of a profile that exports nothing
    provider = build_tracer_provider(ObservabilitySettings(trace_exporter="none"), "t")
    tracer = provider.get_tracer("test")

    # when a span starts before any processor, then another after one is added
    with tracer.start_as_current_span("unreceived") as unreceived:
        recording_before = unreceived.is_recording()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with tracer.start_as_current_span("received") as received:
        recording_after = received.is_recording()

    # then the first is not recorded but has real ids (logs and decisions carry its trace id)
    assert not recording_before
    assert unreceived.get_span_context().is_valid
    # and the second is recorded and exported
    assert recording_after
    assert [span.name for span in exporter.get_finished_spans()] == ["received"]


@pytest.mark.parametrize(
    ("sampler", "parent_sampled", "recorded"),
    [
        (None, None, True),  # OpenTelemetry's default: parentbased_always_on
        (None, False, False),  # a caller's unsampled traceparent is followed
        (None, True, True),
        ("always_off", None, False),
        ("parentbased_traceidratio", None, False),  # with OTEL_TRACES_SAMPLER_ARG=0 below
    ],
)
def test_the_environment_chooses_the_sampler_of_received_spans(
    monkeypatch: pytest.MonkeyPatch,
    sampler: str | None,
    parent_sampled: bool | None,
    recorded: bool,
) -> None:
    # given OpenTelemetry's own sampler variables and a provider whose spans are received
    if sampler is not None:
        monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    else:
        monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    provider = build_tracer_provider(ObservabilitySettings(trace_exporter="none"), "t")
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    parent = None
    if parent_sampled is not None:
        remote = trace.SpanContext(
            trace_id=0x0AF7651916CD43DD8448EB211C80319C,
            span_id=0xB7AD6B7169203331,
            is_remote=True,
            trace_flags=trace.TraceFlags(0x01 if parent_sampled else 0x00),
        )
        parent = trace.set_span_in_context(trace.NonRecordingSpan(remote))

    # when a span starts
    with provider.get_tracer("test").start_as_current_span("decision", context=parent):
        pass

    # then it is exported exactly when the sampler says so
    assert len(exporter.get_finished_spans()) == (1 if recorded else 0)


def one_span_batched(exporter: InMemorySpanExporter) -> TracerProvider:
    """A provider whose exporter is fed in batches every 60 s, holding one ended span."""
    provider = build_tracer_provider(ObservabilitySettings(trace_exporter="none"), "t")
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    with provider.get_tracer("test").start_as_current_span("decision"):
        pass
    return provider


def test_a_stopping_service_exports_the_spans_still_batched() -> None:
    # given a span still batched
    exporter = InMemorySpanExporter()
    provider = one_span_batched(exporter)
    assert exporter.get_finished_spans() == ()

    # when the service flushes as it stops
    flushed = flush_spans(provider)

    # then the batched span is exported
    assert flushed
    assert [span.name for span in exporter.get_finished_spans()] == ["decision"]
    provider.shutdown()


class StalledExporter(InMemorySpanExporter):
    """A collector that does not answer: each export waits until released."""

    def __init__(self) -> None:
        super().__init__()
        self.released = threading.Event()

    def export(self, spans: Any) -> Any:
        self.released.wait(30)
        return super().export(spans)


def test_a_stop_waits_for_a_silent_collector_no_longer_than_its_limit() -> None:
    # given a span batched for a collector that does not answer
    exporter = StalledExporter()
    provider = one_span_batched(exporter)

    # when the stop flushes with a limit of 0.2 s
    flushed = flush_spans(provider, timeout_s=0.2)

    # then it gives up at the limit and says so (the SDK's own flush waited for the exporter)
    exporter.released.set()
    provider.shutdown()
    assert not flushed


def test_an_exported_span_keeps_no_personal_data_of_an_exception_or_attribute() -> None:
    # given a provider exporting through the platform's redaction into memory
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(exporter)))
    tracer = provider.get_tracer("test")

    # when a span ends in an exception quoting a card, an e-mail and a phone number, with an
    # attribute that quotes one and another named like personal data
    with pytest.raises(ValueError), tracer.start_as_current_span("model.conduct") as span:
        span.set_attributes({"risk.note": f"from {EMAIL}", "risk.text": "hello", "risk.n": 3})
        span.set_attribute("risk.values", [CARD, "ok"])
        raise ValueError(f"cannot score {CARD} for {EMAIL} on {PHONE}")

    # then the exported span holds none of them, in its event, status or attributes
    (exported,) = exporter.get_finished_spans()
    rendered = exported.to_json()
    for personal in (CARD, EMAIL, PHONE, "hello"):
        assert personal not in rendered
    # and still says what failed, where and which span it was
    (event,) = exported.events
    assert event.attributes["exception.type"] == "ValueError"
    assert "cannot score" in event.attributes["exception.message"]
    assert "test_observability.py" in event.attributes["exception.stacktrace"]
    assert exported.status.status_code is trace.StatusCode.ERROR
    assert exported.status.description.startswith("ValueError: cannot score")
    assert exported.attributes["risk.n"] == 3 and exported.attributes["risk.text"] == "[REDACTED]"
    assert exported.context == span.get_span_context() and exported.name == "model.conduct"


def test_the_profile_s_exporter_receives_spans_redacted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given the provider the console profile builds
    provider = build_tracer_provider(ObservabilitySettings(trace_exporter="console"), "t")

    # when a span fails on a message quoting an e-mail address, and the spans are flushed
    with pytest.raises(KeyError), provider.get_tracer("test").start_as_current_span("decision"):
        raise KeyError(f"no customer {EMAIL}")
    provider.force_flush()
    provider.shutdown()

    # then the span reaches the exporter, and the address does not
    written = capsys.readouterr().err
    assert '"name": "decision"' in written and "KeyError" in written
    assert EMAIL not in written


def test_no_child_span_is_made_under_a_span_that_is_not_recorded() -> None:
    # given the provider of a profile that exports nothing: its spans are not recorded
    tracer = build_tracer_provider(ObservabilitySettings(trace_exporter="none"), "t").get_tracer(
        "test"
    )

    # when a decision's span opens its children
    with (
        tracer.start_as_current_span("decision") as decision,
        tracer.start_as_current_span("features.fetch") as child,
    ):
        child.set_attribute("risk.feature_service", "fraud_v1")
        current = trace.get_current_span()

    # then the child is the decision's span itself, which still has real ids for the log lines
    assert child is decision and current is decision
    assert decision.get_span_context().is_valid and not decision.is_recording()


@pytest.mark.parametrize(
    "sampler", ["always_on", "traceidratio", "parentbased_traceidratio", "parentbased_always_on"]
)
def test_children_are_exported_exactly_with_their_parent(
    monkeypatch: pytest.MonkeyPatch, sampler: str
) -> None:
    # given OpenTelemetry's samplers, a ratio keeping about half of the traces
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.5")
    provider = build_tracer_provider(ObservabilitySettings(trace_exporter="none"), "t")
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")

    # when 200 decisions each open a child, which opens one of its own
    for _ in range(200):
        with (
            tracer.start_as_current_span("decision"),
            tracer.start_as_current_span("audit.write"),
            tracer.start_as_current_span("commit"),
        ):
            pass

    # then every recorded decision has both its descendants exported under it, and no other
    # span is exported: skipping children of unrecorded spans drops nothing the sampler keeps
    spans = exporter.get_finished_spans()
    by_name = {name: [s for s in spans if s.name == name] for name in ("decision", "audit.write")}
    decisions = {s.context.span_id for s in by_name["decision"]}
    assert 0 < len(decisions) <= 200 and len(spans) == 3 * len(decisions)
    assert {s.parent.span_id for s in by_name["audit.write"] if s.parent} == decisions
    if "ratio" in sampler:
        assert len(decisions) < 200


def test_a_caller_s_unsampled_trace_is_followed_by_the_sdk_sampler() -> None:
    # given a provider whose spans are received, and a caller's traceparent saying "not sampled"
    provider = build_tracer_provider(ObservabilitySettings(trace_exporter="none"), "t")
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    remote = trace.SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=trace.TraceFlags(0x00),
    )
    caller = trace.set_span_in_context(trace.NonRecordingSpan(remote))

    # when the server span starts from it, current or explicit
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST /v1/decisions", context=caller) as explicit:
        pass
    token = context_api.attach(caller)
    try:
        with tracer.start_as_current_span("POST /v1/decisions") as current:
            pass
    finally:
        context_api.detach(token)

    # then each is a new span of the caller's trace (its own id), unrecorded as the caller asked
    for span in (explicit, current):
        assert span.get_span_context().trace_id == remote.trace_id
        assert span.get_span_context().span_id != remote.span_id
        assert not span.is_recording()
    assert exporter.get_finished_spans() == ()


def test_structured_attributes_and_links_are_redacted_and_the_dropped_counts_kept() -> None:
    # given spans limited to four attributes and one event, exported through the redaction
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=4, max_events=1))
    provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(exporter)))
    tracer = provider.get_tracer("test")
    linked = trace.SpanContext(0x1, 0x2, is_remote=True)

    # when a span holds personal data in a mapping, a nested list, bytes and a link's attributes
    with tracer.start_as_current_span(
        "decision", links=[trace.Link(linked, {"why": f"card {CARD}"})]
    ) as span:
        span.set_attribute("risk.first", 0)  # the oldest: dropped by the limit
        span.set_attribute("risk.customer", {"contact": EMAIL, "email": "x", "n": 2})  # type: ignore[arg-type]
        span.set_attribute("risk.nested", [[EMAIL]])  # type: ignore[list-item]
        span.set_attribute("risk.raw", CARD.encode())
        span.set_attribute("risk.last", 1)
        span.add_event("first")
        span.add_event("second")

    # then none of it is exported, the structure and other values are
    (exported,) = exporter.get_finished_spans()
    rendered = exported.to_json() + repr(exported.attributes) + repr(exported.links[0].attributes)
    assert EMAIL not in rendered and "4111" not in rendered
    assert exported.attributes["risk.customer"]["email"] == "[REDACTED]"
    assert exported.attributes["risk.customer"]["n"] == 2
    # and what the SDK's limits dropped is still counted
    assert exported.dropped_attributes == 1 and exported.dropped_events == 1


def test_a_child_of_a_span_already_ended_is_still_made() -> None:
    # given a provider whose spans are received, and a span ended while still current
    provider = build_tracer_provider(ObservabilitySettings(trace_exporter="none"), "t")
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")

    # when background work starts a child under it
    with tracer.start_as_current_span("request", end_on_exit=False) as request:
        request.end()
        with tracer.start_as_current_span("background"):
            pass

    # then the child is exported, as the SDK alone would export it
    assert sorted(span.name for span in exporter.get_finished_spans()) == [
        "background",
        "request",
    ]


def test_a_child_started_after_a_processor_is_added_is_the_sampler_s_to_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a sampler that records every span, and a span started while nothing received spans
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")
    provider = build_tracer_provider(ObservabilitySettings(trace_exporter="none"), "t")
    tracer = provider.get_tracer("test")
    exporter = InMemorySpanExporter()
    with tracer.start_as_current_span("job"):
        # when a processor is added, then a child starts
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        with tracer.start_as_current_span("step"):
            pass

    # then the child is the sampler's to record, and it does
    assert [span.name for span in exporter.get_finished_spans()] == ["step"]


def test_an_explicit_context_always_gets_a_span_of_its_own() -> None:
    # given an unrecorded local span, current
    tracer = build_tracer_provider(ObservabilitySettings(trace_exporter="none"), "t").get_tracer(
        "test"
    )
    with tracer.start_as_current_span("decision") as decision:
        # when a span starts with that very context passed explicitly
        explicit = trace.set_span_in_context(decision)
        with tracer.start_as_current_span("scorer call", context=explicit) as child:
            pass

    # then it has its own span id in the same trace
    assert child.get_span_context().trace_id == decision.get_span_context().trace_id
    assert child.get_span_context().span_id != decision.get_span_context().span_id


def test_the_tracer_decorates_coroutine_functions() -> None:
    # given a provider whose spans are received, and a coroutine function decorated by a tracer
    provider = build_tracer_provider(ObservabilitySettings(trace_exporter="none"), "t")
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")

    @tracer.start_as_current_span("async-work")
    async def work() -> bool:
        return trace.get_current_span().is_recording()

    # when it runs, then its span is current while it runs, and exported
    assert asyncio.run(work())
    assert [span.name for span in exporter.get_finished_spans()] == ["async-work"]
    assert tracer.sampler is provider.sampler  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "value",
    [{"body": "I live at 12 Elm St"}, ["I live at 12 Elm St"], 'it\'s "I live at 12 Elm St"'],
)
def test_a_rejected_value_pydantic_echoes_is_masked_whatever_its_type(value: object) -> None:
    # given a validation error quoting a dict, a list or a string holding both quotes
    class Amount(BaseModel):
        value: int

    with pytest.raises(ValidationError) as error:
        Amount(value=value)  # type: ignore[arg-type]

    # when its text passes the redaction of log lines and spans
    redacted = redact_line(f"could not read the request: {error.value}")

    # then the value is gone and the error still says what failed
    assert "Elm St" not in redacted
    assert "input_value=[REDACTED], input_type=" in redacted and "valid integer" in redacted


def test_an_echoed_value_holding_pydantic_s_own_words_is_masked_whole() -> None:
    # given validation errors whose rejected values quote ", input_type=" themselves, and one
    # whose location is a key holding "input_value="
    class Amount(BaseModel):
        value: int

    texts = []
    for value in ("hi, input_type=str] I live at 12 Elm St", {"k": "x, input_type=y Elm St"}):
        with pytest.raises(ValidationError) as error:
            Amount(value=value)  # type: ignore[arg-type]
        texts.append(str(error.value))
    with pytest.raises(ValidationError) as error:
        TypeAdapter(dict[str, int]).validate_python({"input_value=my key": "Elm St"})
    texts.append(str(error.value))

    # when they pass the redaction, then no part of a value is left, and the key's line stays
    redacted = [redact_line(text) for text in texts]
    assert all("Elm St" not in text for text in redacted)
    assert "input_value=my key" in redacted[2] and "valid integer" in redacted[2]
