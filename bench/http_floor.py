"""BentoML's own cost: ``/v1/decisions`` as RiskService serves it, with the decision taken out.

Same request and response models, the same middlewares (the server span, the API key, JSON
only, the OpenAPI document), BentoML's tracing off as there, the same workers, thread pool,
logging and tracer provider (``observed``), routes bound once and ``gc.freeze``; the route
validates the request and returns one stored decision (a decision the bench made in process)
without features, models or audit, as RiskService answers: its canonical JSON in a plain
response. Whatever latency and CPU it costs at a rate is what BentoML, uvicorn and the
middlewares cost before any decision is made: the floor under the served figures in
``bench/decide.py``. (Until 2026-12-05 it had one worker, BentoML's tracing middleware and its
text logs, none of which ``RiskService`` has any longer.) Benchmark only; nothing serves it in the
product.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import bentoml

from bench.decide import DECISION_FILE
from bentos.service import DECISION_SERVING, bind_routes, guarded, observed
from decisioning.core.decision import RiskDecision, canonical_json
from decisioning.core.engine import DecisionRequest
from decisioning.wiring import freeze_startup_heap


@bentoml.service(name="http_floor", **DECISION_SERVING)
class HttpFloor:
    def __init__(self) -> None:
        observed("http_floor")
        stored = Path(os.environ[DECISION_FILE]).read_text()
        decision = RiskDecision.model_validate_json(stored)
        self.text = canonical_json(decision.model_dump(mode="json"))
        bind_routes(self)
        freeze_startup_heap()

    @bentoml.api(route="/v1/decisions", input_spec=DecisionRequest)
    def decide(self, **request: Any) -> RiskDecision:
        from starlette.responses import Response

        DecisionRequest.model_validate(request)  # as RiskService does before deciding
        return Response(self.text, media_type="application/json")  # type: ignore[return-value]


guarded(HttpFloor)
