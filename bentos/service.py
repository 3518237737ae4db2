"""The BentoML services: a fraud scorer, a conduct scorer and ``RiskService``.

The API they serve is described in docs/design.md, Contracts: HTTP API.

Thin on purpose: parse (pydantic), call ``decisioning``, respond. ``RiskService`` runs the fraud
pillar in its own process and takes the conduct scorer as a ``bentoml.depends`` dependency in
another: a payment's whole budget is 10 ms at p99, which a second HTTP hop and its JSON would
mostly spend, while a text costs tens of milliseconds of torch that must not stall payments
(docs/adr/0006-decision-service.md, figures in docs/benchmarks.md). ``FraudScorer`` still serves
alone for scaling the fraud pillar apart. A pillar that fails or times out becomes a degraded
decision with the policy's fallback, never an error to the caller and never an approval.
Serve with ``riskctl serve`` (or ``bentoml serve bentos.service:RiskService``).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import bentoml
from bentoml.exceptions import BentoMLException

from bentos.auth import ApiKeyMiddleware
from bentos.contracts import ConductScore, FraudScore
from bentos.media import JsonOnlyMiddleware
from bentos.openapi import OpenApiMiddleware
from bentos.startup import starting
from bentos.tracing import TRACING, TracingMiddleware
from decisioning.adapters.feast.freshness import watch_feature_freshness
from decisioning.core.contract import load_contract_limits, refusals
from decisioning.core.decision import RiskDecision
from decisioning.core.engine import DecisionRequest
from decisioning.core.events import TextEvent, TransactionEvent, utc_now
from decisioning.core.ports import ConductResult, PillarUnavailable
from decisioning.pillars import FraudScorerPillar
from decisioning.settings import Settings, load_settings
from decisioning.telemetry.metrics import record_decision, record_error
from decisioning.telemetry.observability import configure_logging, configure_tracing, flush_spans
from decisioning.telemetry.stored_results import watch_stored_results
from decisioning.wiring import (
    build_engine,
    conduct_pillar,
    explanation_queue,
    fraud_pillar,
    freeze_startup_heap,
)

logger = logging.getLogger(__name__)


class ScorerUnavailable(BentoMLException):
    """The scorer has no model or its inputs failed: 503, with the policy's cause first."""

    error_code = HTTPStatus.SERVICE_UNAVAILABLE


@bentoml.service(name="fraud_scorer", workers=1, traffic={"timeout": 30}, tracing=TRACING)
class FraudScorer:
    """Feast online features (after pushing the payment's velocity) and the fraud champion."""

    def __init__(self) -> None:
        with starting():
            settings = observed("fraud_scorer")
            self.pillar, self.problem = pillar_or_problem(fraud_pillar, settings, "fraud_scorer")
            bind_routes(self)
            freeze_startup_heap()

    @bentoml.on_shutdown
    def export_last_spans(self) -> None:
        flush_spans()

    @bentoml.api(route="/v1/fraud/score")
    def score(self, transaction: TransactionEvent) -> FraudScore:
        """What the fraud pillar would say of a payment: read-only, nothing is recorded."""
        return score_payment(self.pillar, self.problem, transaction)


@bentoml.service(name="conduct_scorer", workers=1, traffic={"timeout": 30}, tracing=TRACING)
class ConductScorer:
    """Rules, the conduct classifier on the one embeddings model, and evidence retrieval."""

    def __init__(self) -> None:
        with starting():
            import torch

            torch.set_num_threads(1)  # one thread per worker: 19 ms a text instead of 250 ms
            settings = observed("conduct_scorer")
            self.pillar, self.problem = pillar_or_problem(
                conduct_pillar, settings, "conduct_scorer"
            )
            bind_routes(self)
            freeze_startup_heap()

    @bentoml.on_shutdown
    def export_last_spans(self) -> None:
        flush_spans()

    # async: the SQLite embedding cache stays on the event loop's one thread (a sync API would run
    # in a thread pool, and a SQLite connection refuses a second thread). Fact extraction, which
    # waits on the LLM provider, runs on a worker thread: a slow provider must not hold every
    # other text queued behind the loop.
    @bentoml.api(route="/v1/conduct/assess")
    async def assess(self, text: TextEvent) -> ConductScore:
        import anyio.to_thread

        if self.pillar is None:
            record_error("/v1/conduct/assess")
            raise ScorerUnavailable(f"conduct_model_unavailable: {self.problem}")
        assessment = self.pillar.classify(text)
        result = await anyio.to_thread.run_sync(self.pillar.with_facts, text, assessment)
        return ConductScore.of(result)


class _RemoteConduct:
    """The conduct pillar over HTTP: it assesses; replay needs the pillar in process."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def assess(self, event: TextEvent) -> ConductResult:
        answer = _call_conduct(_sync(self.client).assess, text=event)
        return ConductScore.model_validate(answer).result()


def observed(service_name: str) -> Settings:
    """Each service process: settings, JSON logs with trace ids, span exporter, zeroed counters."""
    from decisioning.adapters.llm.gateway import OfflineProvider, OpenAICompatibleProvider
    from decisioning.telemetry.metrics import initialise_known_series

    settings = load_settings()
    configure_logging(service_name)
    configure_tracing(settings, service_name)
    # The gateway labels calls with its provider's class name.
    initialise_known_series([OfflineProvider.__name__, OpenAICompatibleProvider.__name__])
    return settings


def pillar_or_problem(
    build: Callable[[Settings], Any], settings: Settings, service_name: str
) -> tuple[Any, str]:
    """Build a pillar; without a champion or a store, serve anyway and say why.

    Its route then answers 503 naming the cause, and decisions degrade to the policy fallback.
    """
    try:
        return build(settings), ""
    except Exception as exc:
        problem = f"{type(exc).__name__}: {exc}"
        logger.warning("%s unavailable: %s", service_name, problem)
        return None, problem


def score_payment(
    pillar: FraudScorerPillar | None, problem: str, transaction: TransactionEvent
) -> FraudScore:
    """``/v1/fraud/score``: the fraud pillar's view of one payment, or 503 naming the cause."""
    if pillar is None:
        record_error("/v1/fraud/score")
        raise ScorerUnavailable(f"fraud_model_unavailable: {problem}")
    try:
        return FraudScore.of(pillar.assess(transaction))
    except PillarUnavailable as exc:
        record_error("/v1/fraud/score", f"{pillar.model.name}:{pillar.model.version}")
        raise ScorerUnavailable(f"{exc.cause}: {exc.detail}") from exc


def _sync(client: Any) -> Any:
    """The blocking client of a dependency (its API methods are async); the instance in tests."""
    return getattr(client, "to_sync", client)


def _call_conduct(method: Any, **kwargs: Any) -> Any:
    """Call the conduct scorer; its failure becomes the policy cause it names, else a timeout.

    Over HTTP BentoML replaces a 5xx message with a generic one, so a remote failure is mostly
    recorded as ``timeout``; the named cause survives when the scorer runs in process (tests).
    """
    try:
        answer = method(**kwargs)
    except Exception as exc:
        message = str(exc)
        if "conduct_model_unavailable" in message:
            raise PillarUnavailable("conduct_model_unavailable", message[-300:]) from exc
        raise PillarUnavailable("timeout", f"conduct scorer: {type(exc).__name__}") from exc
    return answer.model_dump() if hasattr(answer, "model_dump") else answer


# Decisions wait on Redis and on the audit commit between short bursts of CPU: BentoML's default of
# one thread for a sync API would serialise them behind each round trip (~50 decisions/s here),
# and many threads fight over the GIL. At 200 rps on two cores (docs/benchmarks.md, issue 19): 16
# threads p50 6.6-8.2 ms, p99 26-37 ms, 4.3-4.8 ms of CPU a request; 4 threads p50 4.6-5.6, p99
# 17-19, 3.6-4.2; 2 threads p50 8.7, p99 25 (waiting behind round trips). A 1 ms GIL switch
# interval with 4 threads made it worse (p99 60 ms, 5.5 ms of CPU). The route stays a sync API on
# BentoML's AnyIO worker threads: its synchronous client of the conduct scorer calls
# ``anyio.from_thread.run``, which works only there (an async route handing decisions to a pool
# of its own made every message a degraded review, and cut no CPU: docs/benchmarks.md).
DECISION_THREADS = 4
# One worker process per CPU: a served decision is CPU-bound between its round trips, and one
# process saturates near 200 decisions/s on two cores (p99 127-1,279 ms at 200 rps against
# 39-73 ms with two workers, docs/benchmarks.md). Workers share the audit chain through its lock.
RISK_WORKERS = "cpu_count"
# A graceful stop gives the explanation in flight this long, well inside the 30 s grace period
# before a kill, so the audit store's shutdown checkpoint still runs; no provider is called once
# the stop starts: queued decisions are stored as "explanation unavailable" (the decisions stand).
EXPLANATION_DRAIN_S = 10.0


# How the decision route is served; bench/http_floor.py serves its bare route the same way.
DECISION_SERVING: dict[str, Any] = {
    "workers": RISK_WORKERS,
    "threads": DECISION_THREADS,
    "traffic": {"timeout": 60},
    "tracing": TRACING,
}


@bentoml.service(name="risk_service", **DECISION_SERVING)
class RiskService:
    """``/v1/decisions`` and the scorers' routes behind one API key check.

    The fraud pillar is built here, in process; the conduct scorer is a dependency.
    """

    conduct = bentoml.depends(ConductScorer)

    def __init__(self) -> None:
        with starting():  # a stop during start-up ends it there (bentos/startup.py)
            settings = observed("risk_service")
            self.limits = load_contract_limits(settings.config_path("configs/contract.yaml"))
            # Drift, flag-quality and job-success gauges from the operations store, kept fresh.
            self.stored_results = watch_stored_results(settings)
            self.feature_freshness = watch_feature_freshness(settings)  # materialization
            self.fraud, self.fraud_problem = pillar_or_problem(
                fraud_pillar, settings, "fraud pillar"
            )
            self.engine = build_engine(
                settings, fraud=self.fraud, conduct=_RemoteConduct(self.conduct)
            )
            # Reviews and escalations are explained after they are answered (docs/adr/0016).
            self.explanations = explanation_queue(settings, self.engine.audit)
            bind_routes(self)
            freeze_startup_heap()

    @bentoml.on_shutdown
    def close_audit_store(self) -> None:
        """On a graceful stop, write the explanations still queued, then anchor what this
        worker appended since its last checkpoint; then export the spans still batched."""
        try:
            self.explanations.close(timeout=EXPLANATION_DRAIN_S)
            self.engine.audit.close()
        finally:
            flush_spans()

    def __is_ready__(self) -> bool:
        """Ready once the served feature service has batch values online; else 503 with why.

        BentoML's own 503 says only that this returned False, so the reason is raised instead.
        """
        from starlette.exceptions import HTTPException

        reason = self.not_ready_reason()
        if reason is not None:
            raise HTTPException(status_code=HTTPStatus.SERVICE_UNAVAILABLE, detail=reason)
        return True

    def not_ready_reason(self) -> str | None:
        # Without a fraud pillar no feature service is served: decisions take the policy's
        # fallback, which features arriving later would not change until a restart.
        if self.fraud is None:
            return None
        return self.feature_freshness.not_ready_reason()

    @bentoml.api(route="/v1/decisions", input_spec=DecisionRequest)
    def decide(self, **request: Any) -> RiskDecision:
        """Decide a payment, a message or both; the decision is audited before it is answered.

        Idempotent by ``transaction_id`` (else ``message_id``): a repeat gets the stored decision
        (same ``decision_id``, ``replay: true``) and counts nothing again; the same id with a
        different request gets 409. A 503 means nothing was decided or counted: retry.
        The answer's body is the decision's canonical JSON, the same bytes as its audit record's
        decision (keys sorted): encoded once, for both; a repeat's has ``"replay":true``.
        """
        from starlette.responses import JSONResponse, Response

        from decisioning.core.errors import AuditUnavailable, IdempotencyConflict

        started = time.perf_counter()
        checked = DecisionRequest.model_validate(request)
        refused = refusals(self.limits, utc_now(), checked.transaction, checked.text)
        if refused:
            return out_of_bounds("/v1/decisions", refused)
        try:
            answer = self.engine.answer(checked)
        except AuditUnavailable as exc:
            record_error("/v1/decisions")
            # Not raised: BentoML replaces the message of any 5xx error with a generic one, and
            # the caller needs to know that no decision was returned and that a retry is safe.
            return JSONResponse(  # type: ignore[return-value]
                {"error": f"audit_unavailable: {exc}; no decision returned, retry later"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        except IdempotencyConflict as exc:
            logger.info("refused /v1/decisions: 409 %s", exc)
            return JSONResponse(  # type: ignore[return-value]
                {"error": f"conflict: {exc}; send a new id for a new request"}, status_code=409
            )
        except Exception:
            record_error("/v1/decisions")
            raise
        record_decision(answer.decision, "/v1/decisions", time.perf_counter() - started)
        self.explanations.submit(answer.decision)  # queued: the answer never waits for an LLM
        return Response(answer.text, media_type="application/json")  # type: ignore[return-value]

    @bentoml.api(route="/v1/fraud/score")
    def fraud_score(self, transaction: TransactionEvent) -> FraudScore:
        """What the fraud pillar would say of a payment: read-only, a what-if.

        Nothing is recorded: not the payment in the customer's history, not a decision in the
        audit store. Only ``/v1/decisions`` decides (and counts) a payment.
        """
        refused = refusals(self.limits, utc_now(), transaction=transaction)
        if refused:
            return out_of_bounds("/v1/fraud/score", refused)
        return score_payment(self.fraud, self.fraud_problem, transaction)

    @bentoml.api(route="/v1/conduct/assess")
    def conduct_assess(self, text: TextEvent) -> ConductScore:
        return ConductScore.model_validate(_proxy(_sync(self.conduct).assess, text=text))


def out_of_bounds(route: str, refused: list[dict[str, Any]]) -> Any:
    """400 naming each field out of the deployment's bounds, as a validation error names them."""
    from starlette.responses import JSONResponse

    fields = ", ".join(".".join(str(part) for part in refusal["loc"]) for refusal in refused)
    logger.info("refused %s: 400 out of bounds at %s", route, fields)
    return JSONResponse(
        {"error": f"{len(refused)} value(s) out of bounds", "detail": refused}, status_code=400
    )


def traced(service: Any) -> None:
    """The service's server span (bentos/tracing.py), named after its routes."""
    routes = frozenset(api.route for api in service.apis.values())
    service.add_asgi_middleware(TracingMiddleware, routes=routes)


def bind_routes(instance: object) -> None:
    """Bind each of a service's API methods to its instance once.

    BentoML looks a route's method up on the instance at every request, and ``APIMethod``'s
    ``__get__`` reads the function's signature (``inspect.signature``) each time: ~11 us of CPU a
    request (issue 19). An ``APIMethod`` is a non-data descriptor, so an instance attribute of
    the same name is found first: set here, it is the very function the descriptor returns.
    """
    from _bentoml_sdk.method import APIMethod

    cls = type(instance)
    for name in dir(cls):
        member = inspect.getattr_static(cls, name)
        if isinstance(member, APIMethod):
            setattr(instance, name, member.__get__(instance, cls))


def _proxy(method: Any, **kwargs: Any) -> Any:
    try:
        answer = method(**kwargs)
    except Exception as exc:
        raise ScorerUnavailable(str(exc)[-300:]) from exc
    return answer.model_dump() if hasattr(answer, "model_dump") else answer


# Starlette runs the first added outermost: a caller without a key learns nothing else; the
# server span holds the whole request, a refused one included.
def guarded(service: Any) -> None:
    """The decision route's middlewares, in order (bench/http_floor.py adds the same)."""
    traced(service)
    for middleware in (ApiKeyMiddleware, JsonOnlyMiddleware, OpenApiMiddleware):
        service.add_asgi_middleware(middleware)


for _service in (FraudScorer, ConductScorer):
    traced(_service)
guarded(RiskService)
