"""The services' server span: one a request, named after its route, following the caller's trace."""

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.testclient import TestClient

from bentos.tracing import TracingMiddleware
from tests.support.spans import collected_spans

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    yield from collected_spans()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the status its path names (``/status/503``), from inside a span of its own."""
    with trace.get_tracer("test").start_as_current_span("work"):
        status = int(scope["path"].rsplit("/", 1)[-1]) if "/status/" in scope["path"] else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


@pytest.fixture
def client() -> TestClient:
    routes = frozenset({"/v1/decisions", "/status/503"})
    return TestClient(TracingMiddleware(app, routes=routes), raise_server_exceptions=False)


def by_name(spans: InMemorySpanExporter) -> dict[str, Any]:
    return {span.name: span for span in spans.get_finished_spans()}


def test_a_request_is_one_server_span_over_the_work_it_does(
    client: TestClient, spans: InMemorySpanExporter
) -> None:
    client.post("/v1/decisions", json={})

    finished = by_name(spans)
    server, work = finished["POST /v1/decisions"], finished["work"]
    assert server.kind is SpanKind.SERVER
    assert server.attributes["http.route"] == "/v1/decisions"
    assert server.attributes["http.response.status_code"] == 200
    assert work.parent.span_id == server.context.span_id
    assert work.context.trace_id == server.context.trace_id


def test_the_callers_traceparent_is_followed(
    client: TestClient, spans: InMemorySpanExporter
) -> None:
    headers = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}

    client.post("/v1/decisions", json={}, headers=headers)

    server = by_name(spans)["POST /v1/decisions"]
    assert trace.format_trace_id(server.context.trace_id) == CALLER_TRACE
    assert trace.format_span_id(server.parent.span_id) == CALLER_SPAN


def test_a_caller_that_samples_nothing_gets_nothing_recorded(
    client: TestClient, spans: InMemorySpanExporter
) -> None:
    headers = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-00"}

    client.post("/v1/decisions", json={}, headers=headers)

    assert spans.get_finished_spans() == ()


def test_a_path_the_service_does_not_serve_names_no_span(
    client: TestClient, spans: InMemorySpanExporter
) -> None:
    client.get("/v1/../../etc/passwd-0123456789")

    (server,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert server.name == "GET"
    assert "http.route" not in server.attributes


def test_a_server_error_marks_the_span_failed(
    client: TestClient, spans: InMemorySpanExporter
) -> None:
    client.post("/status/503", json={})

    server = by_name(spans)["POST /status/503"]
    assert server.status.status_code is StatusCode.ERROR
    assert server.attributes["http.response.status_code"] == 503


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz", "/metrics"])
def test_probes_and_scrapes_are_not_traced(
    client: TestClient, spans: InMemorySpanExporter, path: str
) -> None:
    client.get(path)

    assert [s.name for s in spans.get_finished_spans()] == ["work"]


def call(
    middleware: TracingMiddleware, headers: list[tuple[bytes, bytes]], method: str = "POST"
) -> list[Any]:
    """One request straight through the ASGI interface, raw header bytes as a client sent them."""
    scope = {"type": "http", "method": method, "path": "/v1/decisions", "headers": headers}
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    return sent


def test_a_traceparent_that_cannot_be_decoded_starts_a_new_trace(
    spans: InMemorySpanExporter,
) -> None:
    # OpenTelemetry's ASGI getter raises UnicodeDecodeError on these bytes: it was a 500
    middleware = TracingMiddleware(app, routes=frozenset({"/v1/decisions"}))

    sent = call(middleware, [(b"traceparent", b"\xff\\x")])

    assert sent[0]["status"] == 200
    server = by_name(spans)["POST /v1/decisions"]
    assert server.parent is None and server.context.is_valid


def test_a_request_cancelled_by_the_timeout_is_a_failed_span(
    spans: InMemorySpanExporter,
) -> None:
    async def cancelled(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise asyncio.CancelledError

    middleware = TracingMiddleware(cancelled, routes=frozenset({"/v1/decisions"}))

    with pytest.raises(asyncio.CancelledError):
        call(middleware, [])

    server = by_name(spans)["POST /v1/decisions"]
    assert server.status.status_code is StatusCode.ERROR
    assert server.attributes["error.type"] == "cancelled"


def test_a_made_up_method_names_no_span(spans: InMemorySpanExporter) -> None:
    middleware = TracingMiddleware(app, routes=frozenset({"/v1/decisions"}))

    call(middleware, [], method="X-CARD-4111111111111111")

    (server,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert server.name == "_OTHER /v1/decisions"
    assert server.attributes["http.request.method"] == "_OTHER"


def test_a_failure_is_recorded_by_its_type_never_its_message(spans: InMemorySpanExporter) -> None:
    async def failing(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise ValueError("could not parse {'card': '4111 1111 1111 1111', 'name': 'Jane Doe'}")

    middleware = TracingMiddleware(failing, routes=frozenset({"/v1/decisions"}))

    with pytest.raises(ValueError, match="could not parse"):
        call(middleware, [])

    server = by_name(spans)["POST /v1/decisions"]
    assert server.status.status_code is StatusCode.ERROR
    assert server.attributes["error.type"] == "ValueError"
    exported = server.to_json()
    assert "4111" not in exported and "Jane" not in exported, exported
