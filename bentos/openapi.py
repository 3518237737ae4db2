"""The OpenAPI document of the HTTP API, built from the pydantic models and served at /docs.json.

BentoML's own document declared OpenAPI 3.0.2 yet carried 3.1 keywords, dropped ``null`` from
optional fields (``prompt_version`` declared a string, returned null), declared the 400 body's
``detail`` a string (it is a list) and left 401, 409, 415 and 503 and the bearer scheme out.
This one is OpenAPI 3.1, whose schemas are JSON Schema 2020-12: pydantic's own output, unchanged.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import models_json_schema

from bentos.auth import ASGIApp, Receive, Scope, Send
from bentos.contracts import ConductScore, FraudScore
from decisioning.core.decision import RiskDecision
from decisioning.core.engine import DecisionRequest
from decisioning.core.events import TextEvent, TransactionEvent

DOCUMENT_PATH = "/docs.json"


class FieldProblem(BaseModel):
    """One refused field: where (``loc``), what kind of error (``type``) and why (``msg``)."""

    model_config = ConfigDict(extra="allow")

    type: str
    loc: list[str | int]
    msg: str


class Refusal(BaseModel):
    """400: the request broke the contract; nothing was decided or written."""

    error: str
    detail: list[FieldProblem] = Field(default_factory=list)


class ErrorMessage(BaseModel):
    """401, 409, 415, 503: what went wrong, in a sentence."""

    model_config = ConfigDict(extra="allow")

    error: str


FraudScoreRequest = create_model("FraudScoreRequest", transaction=(TransactionEvent, ...))
ConductAssessRequest = create_model("ConductAssessRequest", text=(TextEvent, ...))

Documented = tuple[type[BaseModel], str]
_COMMON: dict[str, Documented] = {
    "400": (Refusal, "refused: a field breaks the contract (types, lengths or bounds)"),
    "401": (ErrorMessage, "no valid API key (Authorization: Bearer KEY)"),
    "415": (ErrorMessage, "the body is not application/json"),
    "503": (ErrorMessage, "a dependency is unavailable; nothing was decided or recorded: retry"),
}
ROUTES: dict[str, tuple[str, type[BaseModel], type[BaseModel], dict[str, Documented]]] = {
    "/v1/decisions": (
        "Decide a payment, a message or both; audited before it is answered. Idempotent by "
        "transaction_id (else message_id): a repeat gets the stored decision with replay: true "
        "and counts nothing again.",
        DecisionRequest,
        RiskDecision,
        {"409": (ErrorMessage, "this id was decided for a different request")},
    ),
    "/v1/fraud/score": (
        "What the fraud pillar would say of a payment: read-only, a what-if. Nothing is "
        "recorded, neither in the customer's history nor in the audit store.",
        FraudScoreRequest,
        FraudScore,
        {},
    ),
    "/v1/conduct/assess": (
        "Category, severity, score and quoted evidence of a message: read-only, not audited.",
        ConductAssessRequest,
        ConductScore,
        {},
    ),
}


@cache
def openapi_document() -> dict[str, Any]:
    """The whole document; built once, it depends on the models only."""
    models: list[type[BaseModel]] = [ErrorMessage, *(model for model, _ in _COMMON.values())]
    for _, body, answer, _ in ROUTES.values():
        models += [body, answer]
    _, schemas = models_json_schema(
        [(model, "validation" if model in _bodies() else "serialization") for model in models],
        ref_template="#/components/schemas/{model}",
    )
    paths = {
        route: {"post": _operation(route, summary, body, answer, extra)}
        for route, (summary, body, answer, extra) in ROUTES.items()
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Risk decisions", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _bodies() -> set[type[BaseModel]]:
    return {body for _, body, _, _ in ROUTES.values()}


def _operation(
    route: str,
    summary: str,
    body: type[BaseModel],
    answer: type[BaseModel],
    extra: dict[str, Documented],
) -> dict[str, Any]:
    responses = {"200": _response(answer, "the answer")}
    for status, (model, description) in sorted({**_COMMON, **extra}.items()):
        responses[status] = _response(model, description)
    return {
        "operationId": route.strip("/").replace("/", "_"),
        "description": summary,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        },
        "responses": responses,
    }


def _response(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


class OpenApiMiddleware:
    """Answers GET /docs.json with :func:`openapi_document` instead of BentoML's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != DOCUMENT_PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        body = json.dumps(openapi_document()).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
