"""Every write takes one path: a command built from the request, published to
modelog.commands, and answered with its committed outcome and the model's
resulting state (read-your-writes), or 202 with a status URL past the wait."""

import asyncio
import re
from datetime import datetime, timezone
from typing import Annotated
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from aiokafka.errors import KafkaError
from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from modelog_contract.domain import Command
from modelog_contract.domain.types import InvalidName, check_model_name
from modelog_platform import tracing
from modelog_platform.identity.tokens import Identity
from modelog_platform.web import ApiError
from registrar.identity import Writer, permitted
from registrar.outcomes import OutcomesUnavailable, rejection_status

IDEMPOTENCY_KEYS = uuid5(NAMESPACE_URL, "https://modelog.dev/idempotency-key")
SEQ_ETAG = re.compile(r'^(?:W/)?"?(\d+)"?$')


def valid_name(name: str) -> str:
    try:
        return check_model_name(name)
    except InvalidName as error:
        raise ApiError(400, "invalid_model_name", str(error)) from None


def expected_seq(if_match: str | None) -> int | None:
    """If-Match carries the model's seq (its ETag): the write applies only at that seq."""
    if if_match is None or if_match.strip() == "*":
        return None
    found = SEQ_ETAG.fullmatch(if_match.strip())
    if not found:
        raise ApiError(400, "invalid_if_match", "If-Match must be the model's seq as an ETag, e.g. \"12\"")
    return int(found.group(1))


def command_id_for(request: Request, caller: Identity, key: str | None) -> UUID:
    """A retry with the same Idempotency-Key is the same command: the promoter
    decides a command id once, and the retry is answered with that outcome."""
    if key is None:
        return uuid4()
    if not 1 <= len(key) <= 255:
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1-255 characters")
    return uuid5(IDEMPOTENCY_KEYS, f"{caller.issuer}\n{caller.subject}\n{request.method} {request.url.path}\n{key}")


class WriteContext:
    """What every command takes from the request rather than from its body."""

    def __init__(self, request: Request, caller: Identity, idempotency_key: str | None, if_match: str | None):
        self.request = request
        self.caller = caller
        self.command_id = command_id_for(request, caller, idempotency_key)
        self.retry_possible = idempotency_key is not None  # else the command id is new: nothing decided it yet
        self.expected_seq = expected_seq(if_match)

    def command(self, kind: type, model: str, **fields) -> Command:
        self.request.state.command_model = model  # for a refusal of a write whose path names no model
        valid_name(model)
        try:
            command = kind(command_id=self.command_id, model=model, actor=self.caller.actor,
                           issued_at=datetime.now(timezone.utc), expected_seq=self.expected_seq, **fields)
        except ValidationError as error:
            raise ApiError(422, "invalid_request", "the command's fields are invalid",
                           problems=[{"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()]) from None
        permitted(self.caller, command)
        return command

    async def already_decided(self) -> dict | None:
        """The outcome of an earlier request with the same Idempotency-Key, if any."""
        try:
            return await self.request.app.state.outcomes.wait_for(self.command_id, 0)
        except OutcomesUnavailable:  # unknown: publish, the promoter decides a command id once
            return None

    async def submit(self, command: Command, created: bool = False) -> JSONResponse:
        # From here a refusal is the promoter's, a CommandRejected event: not a registrar denial.
        self.request.state.submitted = True
        with tracing.span("registrar write", tracing.http_context(dict(self.request.headers)),
                          model=command.model, command=command.type, command_id=str(command.command_id)):
            if self.retry_possible and await self.already_decided() is not None:
                return await self._answer(command.command_id, created)
            # The outcome is asked for as the publish starts, not once the broker
            # has acknowledged it: the request reaches the projector and takes
            # its first look while the broker works, and the commit then wakes a
            # request already waiting.
            answering = asyncio.create_task(self._answer(command.command_id, created))
            try:
                await self._publish(command)
            except BaseException:
                _drop(answering)
                raise
            return await answering

    async def _publish(self, command: Command) -> None:
        state = self.request.app.state
        try:  # bounded: with its broker gone, aiokafka would hold the send until it returns
            await asyncio.wait_for(state.publisher.publish(command), state.settings.publish_timeout_s)
        except (KafkaError, TimeoutError) as error:  # the broker is away: retry later, not a bug
            raise log_unavailable(command, error) from None

    async def _answer(self, command_id: UUID, created: bool) -> JSONResponse:
        with tracing.span("registrar answer"):
            return await answer(self.request, command_id, created)


def _drop(task: asyncio.Task) -> None:
    """Give up on `task`: cancelled if it still runs, its error (if it ended in
    one) taken, so that asyncio does not report it as never retrieved."""
    task.cancel()
    if task.done() and not task.cancelled():
        task.exception()


def log_unavailable(command: Command, error: Exception) -> ApiError:
    """503 for a command the broker did not acknowledge in time. An unacknowledged
    send may still have reached the log, so only a retry with the same
    Idempotency-Key is sure to act once (it is answered with that outcome)."""
    return ApiError(503, "log_unavailable",
                    f"the event log did not take the command ({type(error).__name__}); it may still be "
                    "decided: retry with the same Idempotency-Key", headers={"Retry-After": "5"},
                    command_id=str(command.command_id))


async def write_context(  # async for the reason within_write_rate is: no thread hand-off
    request: Request,
    caller: Writer,
    idempotency_key: Annotated[str | None, Header(description="a retry with the same key gets the same answer")] = None,
    if_match: Annotated[str | None, Header(description="the model's seq as ETag: compare-and-set")] = None,
) -> WriteContext:
    return WriteContext(request, caller, idempotency_key, if_match)


Write = Annotated[WriteContext, Depends(write_context)]


async def answer(request: Request, command_id: UUID, created: bool) -> JSONResponse:
    """The committed outcome with the model's state after it; 202 and a status
    URL if the projector has not committed it within the configured wait."""
    state = request.app.state
    try:
        outcome = await state.outcomes.wait_for(command_id, state.settings.outcome_wait_s, with_state=True)
    except OutcomesUnavailable:  # published, so decided in time: pending, never a 503 that invites a second one
        outcome = None
    status_url = f"/v1/commands/{command_id}"
    if outcome is None:
        return JSONResponse({"command_id": str(command_id), "status": "pending",
                             "status_url": status_url}, 202, headers={"Location": status_url})
    if not outcome["accepted"]:
        details = {"command_id": str(command_id), "model": outcome["model"]}
        if outcome.get("rule_results"):
            details["rule_results"] = outcome["rule_results"]
        raise ApiError(rejection_status(outcome["reason"]), outcome["reason"],
                       outcome["message"], **details)
    body = {"command_id": str(command_id), "status": "accepted", "model": outcome["model"],
            "seq": outcome["last_seq"], "version": outcome["version"], "events": outcome["events"],
            "state": await state.outcomes.state_after(outcome)}
    if "TransitionRequested" in outcome["events"]:
        body["request_id"] = str(command_id)  # the pending request is named after its command
    model = body["state"].get("model") or {}
    return JSONResponse(body, 201 if created else 200,
                        headers={"ETag": f'"{model.get("seq", outcome["last_seq"])}"'})
