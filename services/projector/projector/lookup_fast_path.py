"""The serving lookups' fast path: an ASGI layer in front of the projector's
FastAPI app that answers `GET /v1/models/{name}/stages/{stage}`,
`GET /v1/models/{name}/aliases/{alias}` and the registrar's MLflow cache's
seq checks (`GET /v1/seqs`, model_views.py) itself when all is well.

Why: a cached lookup is a dict hit and one shared seq read, yet FastAPI's
per-request machinery (middleware, routing, dependency solving) took about
four fifths of its CPU; serving systems ask thousands of times a second, and
a registrar under MLflow's reads checks seqs hundreds of times a second.

All is well when the caller's token was verified before and is still valid,
it grants `reader` on the model, the stage is one of the four, and there is an
answer (the model, and the alias, exist; for seqs, one to 1,000 names).
Anything else, a new token or a
refusal or a bad path or a missing model, goes on to the FastAPI routes, which
answer it with their usual errors; so the fast path only ever gives answers
those routes give, with the same status, headers and body.
"""

import json
import re
from typing import get_args
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from modelog_contract.domain.types import Stage
from modelog_platform.adapters.postgres import UNAVAILABLE
from modelog_platform.identity import permissions
from modelog_platform.identity.tokens import bearer_token
from projector import queries
from projector.model_views import MAX_SEQS
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
        elif scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == "/v1/seqs":
            headers = dict(reversed(scope["headers"]))
            try:
                seqs = await self.seqs(headers.get(b"authorization"), scope["query_string"])
            except UNAVAILABLE:
                seqs = None
            if seqs is not None:
                scope["route_template"] = "/v1/seqs"
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-length", str(len(seqs)).encode()), (b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": seqs})
                return
        await self.app(scope, receive, send)

    async def seqs(self, authorization: bytes | None, query: bytes) -> bytes | None:
        """model_views.model_seqs's answer, encoded as its JSONResponse would be;
        None to leave the request to that route."""
        tokens = getattr(self.app.state, "verified_tokens", None)
        token = authorization and bearer_token(authorization.decode("latin-1"))
        identity = token and tokens and tokens.cached(token)
        if not identity or permissions.lacks_role(identity, permissions.READER) is not None:
            return None
        asked = [value for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True) if key == "name"]
        if not 0 < len(asked) <= MAX_SEQS:
            return None
        names = [name for name in asked if permissions.may_act_on(identity.grants, name)]
        found = {}
        if names:
            async with self.app.state.pool.acquire() as conn:
                found = await queries.model_seqs(conn, names)
        body = {"seqs": {name: list(at) for name, at in found.items()}}
        return json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()

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
