"""The serving lookups' fast path: an ASGI layer in front of the projector's
FastAPI app that answers `GET /v1/models/{name}/stages/{stage}`,
`GET /v1/models/{name}/aliases/{alias}`, the registrar's MLflow cache's
seq checks (`GET /v1/seqs`, model_views.py) and the registrar's waits for a
write's outcome (`GET /v1/commands/{id}`, api.py) itself when all is well.

Why: a cached lookup is a dict hit and one shared seq read, yet FastAPI's
per-request machinery (middleware, routing, dependency solving) took about
four fifths of its CPU; serving systems ask thousands of times a second, and
a registrar under MLflow's reads checks seqs hundreds of times a second.
Every write through the registrar asks for its outcome, twice when it
carries an Idempotency-Key (already decided? then: decided now?).

All is well when the caller's token was verified before and is still valid,
it grants `reader` on the model, the stage is one of the four, and there is an
answer (the model, and the alias, exist; for seqs, one to 1,000 names; for
an outcome, the query is `wait` and `state` as plain numbers and booleans,
and the answer is the outcome or `outcome_pending`).
Anything else, a new token or a
refusal or a bad path or a missing model, goes on to the FastAPI routes, which
answer it with their usual errors; so the fast path only ever gives answers
those routes give, with the same status, headers and body.
"""

import math
import re
from typing import get_args
from urllib.parse import parse_qsl
from uuid import UUID

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from modelog_contract.domain.types import Stage
from modelog_platform.adapters.postgres import UNAVAILABLE
from modelog_platform.identity import permissions
from modelog_platform.identity.tokens import Identity, bearer_token
from modelog_platform.web import error_body
from projector import queries
from projector.api import pending_message
from projector.model_views import MAX_SEQS
from projector.serving import Answer, http_answer, json_bytes

LOOKUP = re.compile(r"/v1/models/(?P<name>[^/]+)/(?P<kind>stages|aliases)/(?P<key>[^/]+)")
OUTCOME = re.compile(r"/v1/commands/(?P<command_id>[0-9a-fA-F-]{32,36})")
BOOLEANS = {"true": True, "false": False}
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
                await send_json(send, 200, seqs)
                return
        elif scope["type"] == "http" and scope["method"] == "GET" and (found := OUTCOME.fullmatch(scope["path"])):
            headers = dict(reversed(scope["headers"]))
            try:
                outcome = await self.outcome(headers.get(b"authorization"), found["command_id"], scope["query_string"])
            except UNAVAILABLE:
                outcome = None
            if outcome is not None:
                scope["route_template"] = "/v1/commands/{command_id}"
                await send_json(send, *outcome)
                return
        await self.app(scope, receive, send)

    def reader(self, authorization: bytes | None) -> Identity | None:
        """The caller, if its token was verified before and grants `reader` somewhere."""
        tokens = getattr(self.app.state, "verified_tokens", None)  # None until the app has started
        token = authorization and bearer_token(authorization.decode("latin-1"))
        identity = token and tokens and tokens.cached(token)
        if not identity or permissions.lacks_role(identity, permissions.READER) is not None:
            return None
        return identity

    async def outcome(self, authorization: bytes | None, command_id: str, query: bytes) -> tuple[int, bytes] | None:
        """api.command_outcome's answer (200, or 404 outcome_pending), encoded as
        that route would; None to leave the request to it."""
        identity = self.reader(authorization)
        asked = dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
        if not identity or not asked.keys() <= {"wait", "state"}:
            return None
        try:
            wanted, wait = UUID(command_id), float(asked.get("wait", "0"))
        except ValueError:
            return None
        with_state = BOOLEANS.get(asked.get("state", "false"))
        if with_state is None or not math.isfinite(wait) or wait < 0:
            return None
        state = self.app.state
        settings = state.settings
        found = await state.outcome_wakeups.complete_outcome(
            state.pool, wanted, min(wait, settings.projector_max_wait_s), settings.projector_outcome_poll_s,
            with_state=with_state)
        if found is None:
            return 404, json_bytes(error_body("outcome_pending", pending_message(wanted)))
        if permissions.authorize(identity, permissions.READER, found["model"]) is not None:
            return None  # the route refuses it, with its own words
        return 200, json_bytes(found)

    async def seqs(self, authorization: bytes | None, query: bytes) -> bytes | None:
        """model_views.model_seqs's answer, encoded as its JSONResponse would be;
        None to leave the request to that route."""
        identity = self.reader(authorization)
        if not identity:
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
        return json_bytes(body)

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


async def send_json(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def respond(send: Send, answer: Answer, if_none_match: bytes | None) -> None:
    status, headers, body = http_answer(answer, if_none_match.decode("latin-1") if if_none_match else None)
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    if body:
        raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
