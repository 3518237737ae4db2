"""API-key authentication: every route but health, readiness and metrics needs a Bearer key.

Keys come from ``RISK_API_KEYS`` (or the secrets store that fills it in AWS). With no key
configured every protected route refuses: a service never runs open by accident.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from decisioning.settings import load_settings

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics"})


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._keys = tuple(key.get_secret_value().encode() for key in load_settings().api_keys)
        if not self._keys:
            logger.warning("RISK_API_KEYS is empty: every protected route will answer 401")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or self._authorised(scope):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": "missing or invalid API key (Authorization: Bearer KEY)"})
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})

    def _authorised(self, scope: Scope) -> bool:
        headers = dict(scope.get("headers") or [])
        header = headers.get(b"authorization", b"")
        scheme, _, key = header.partition(b" ")
        if scheme.lower() != b"bearer" or not key:
            return False
        return any(hmac.compare_digest(key.strip(), known) for known in self._keys)
