"""The serving lookups' fast path: an ASGI layer in front of the projector's
FastAPI app that answers `GET /v1/models/{name}/stages/{stage}` and
`GET /v1/models/{name}/aliases/{alias}` itself when all is well.

Why: a cached lookup is a dict hit and one shared seq read, yet FastAPI's
per-request machinery (middleware, routing, dependency solving) took about
four fifths of its CPU; serving systems ask thousands of times a second.

All is well when the caller's token was verified before and is still valid,
it grants `reader` on the model, the stage is one of the four, and there is an
answer (the model, and the alias, exist). Anything else, a new token or a
refusal or a bad path or a missing model, goes on to the FastAPI routes, which
answer it with their usual errors; so the fast path only ever gives answers
those routes give, with the same status, headers and body.
"""

import re
from typing import get_args

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from modelog_contract.domain.types import Stage
from modelog_platform.adapters.postgres import UNAVAILABLE
from modelog_platform.identity import permissions
from modelog_platform.identity.tokens import bearer_token
from projector.serving import Answer, http_answer

LOOKUP = re.compile(r"/v1/models/(?P<name>[^/]+)/(?P<kind>stages|aliases)/(?P<key>[^/]+)")
STAGES = frozenset(get_args(Stage))


class LookupFastPath:
    def __init__(self, app: FastAPI):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and (found := LOOKUP.fullmatch(scope["path"])):
            headers = dict(reversed(scope["headers"]))  # a repeated header: its first value, as Starlette reads it
            try:
                answer = await self.answer(headers.get(b"authorization"), *found.groups())
            except UNAVAILABLE:  # the routes answer it: 503 with Retry-After
                answer = None
            if answer is not None:
                scope["route_template"] = f"/v1/models/{{name}}/{found['kind']}/{{key}}"  # for the request metrics
                await respond(send, answer, headers.get(b"if-none-match"))
                return
        await self.app(scope, receive, send)

    async def answer(self, authorization: bytes | None, name: str, kind: str, key: str) -> Answer | None:
        """The answer to send, or None to leave the request to the FastAPI routes."""
        state = self.app.state
        tokens = getattr(state, "verified_tokens", None)  # None until the app has started
        token = authorization and bearer_token(authorization.decode("latin-1"))
        identity = token and tokens and tokens.cached(token)
        if not identity or permissions.authorize(identity, permissions.READER, name) is not None:
            return None
        if kind == "stages":
            if key not in STAGES:
                return None
            answer = await state.serving.stage(state.pool, name, key)
        else:
            answer = await state.serving.alias(state.pool, name, key)
        return answer if answer is not None and answer.body is not None else None


async def respond(send: Send, answer: Answer, if_none_match: bytes | None) -> None:
    status, headers, body = http_answer(answer, if_none_match.decode("latin-1") if if_none_match else None)
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    if body:
        raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
