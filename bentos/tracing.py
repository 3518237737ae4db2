"""One server span per API request, on the platform's tracer provider.

BentoML's own OpenTelemetry middleware is switched off (``TRACING``: its excluded URLs match every
URL). It records three spans a request (the server's, the body's receive, the answer's send) on a
provider of its own, which has no exporter and a sampling rate of 0: they were built for nothing
(about a tenth of a served decision's CPU, issue 19), and, unsampled, they made the platform's
parent-based sampler drop every span beneath them, so a served decision exported no trace at all.

This span follows the caller's ``traceparent``, is named after the route (the method alone for a
path the service does not serve, so a fuzzer's paths do not become span names) and takes the
answer's status and an exception's type, never its message; the decision's spans are its
children, and BentoML's access line, written inside it, carries its trace id. Health, readiness
and metrics are not traced.
"""

from __future__ import annotations

import asyncio
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.asgi import asgi_getter
from opentelemetry.trace import SpanKind, StatusCode

from bentos.auth import OPEN_PATHS, ASGIApp, Message, Receive, Scope, Send

# BentoML service configuration: its tracing middleware skips every URL (this module traces them).
TRACING: dict[str, Any] = {"excluded_urls": ".*"}

tracer = trace.get_tracer(__name__)


# HTTP's methods (RFC 9110, PATCH): any other token a client sends is "_OTHER", as OpenTelemetry's
# conventions name it, so a client's made-up methods do not become span names either.
METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)


class TracingMiddleware:
    def __init__(self, app: ASGIApp, routes: frozenset[str]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in METHODS else "_OTHER"
        route = scope["path"] if scope["path"] in self.routes else None
        name = f"{method} {route}" if route else method
        # An exception's message may quote the request (a body, a field's value): the span keeps
        # its type only, as the log lines keep no personal data.
        with tracer.start_as_current_span(
            name,
            context=_parent(scope),
            kind=SpanKind.SERVER,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            if not span.is_recording():
                await self.app(scope, receive, send)
                return
            span.set_attribute("http.request.method", method)
            if route:
                span.set_attribute("http.route", route)

            async def send_traced(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(StatusCode.ERROR)
                await send(message)

            try:
                await self.app(scope, receive, send_traced)
            except asyncio.CancelledError:
                # BentoML's timeout (outside this middleware) cancels the request and answers 504
                # itself: its access line then has no trace id, the decision's lines do.
                span.set_attribute("error.type", "cancelled")
                span.set_status(StatusCode.ERROR, "cancelled (timed out or the client left)")
                raise
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(StatusCode.ERROR, type(exc).__qualname__)
                raise


def _parent(scope: Scope) -> Context | None:
    """The caller's trace context; none (a new trace) when its headers cannot be read.

    OpenTelemetry's ASGI getter decodes a header it cannot read as UTF-8 with ``unicode_escape``,
    which raises on some bytes (``\\xff\\x``): a caller's bad ``traceparent`` must not be a 500.
    """
    try:
        return propagate.extract(scope, getter=asgi_getter)  # type: ignore[misc]
    except Exception:
        return None
