"""Only JSON reaches the API: any other content type is refused with 415 before BentoML reads it.

BentoML picks a parser by the ``Content-Type`` header, so a multipart body reached the form
parser and failed with a 500, and a form-encoded one was parsed into a validation error that
logged the whole body. Refused here, the body is never read and never logged.
"""

from __future__ import annotations

import json
import logging

from bentos.auth import OPEN_PATHS, ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

JSON_MEDIA_TYPE = b"application/json"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class JsonOnlyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in BODY_METHODS
            or scope["path"] in OPEN_PATHS
            or is_json(scope)
        ):
            await self.app(scope, receive, send)
            return
        logger.info("refused %s %s: 415 content type is not JSON", scope["method"], scope["path"])
        body = json.dumps({"error": "unsupported media type: send Content-Type: application/json"})
        await send(
            {
                "type": "http.response.start",
                "status": 415,
                "headers": [(b"content-type", b"application/json"), (b"accept", JSON_MEDIA_TYPE)],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})


def is_json(scope: Scope) -> bool:
    """Whether the request says its body is JSON (``application/json``, any parameters)."""
    for name, value in scope.get("headers") or []:
        if name.lower() == b"content-type":
            return bool(value.split(b";")[0].strip().lower() == JSON_MEDIA_TYPE)
    return False
