"""Denied attempts are evidence: every write the registrar refuses before it
becomes a command (401, 403, 422, 429 and the other 4xx) is recorded to
modelog.denials, where the auditor keeps it. A refusal the promoter decides is
already a CommandRejected event in modelog.events and is not recorded twice.

Who (the verified subject and roles, or "anonymous" and why the token proved
nothing; never the token), what (method, route, model, version, the command it
would have been), when, and why (status, code, message).

Recording never changes the answer: a record is put on a bounded queue and
sent in the background; a full queue, or a send Kafka does not take in time,
drops the record with a log line and counts it.

A flood from one subject must not fill the log: per subject, at most
`per_window` records in each window; the rest are counted, and one summary
record per window says how many were suppressed, between which instants.
(The write limiter's token bucket does not fit here: it refills continuously,
so there is no window whose suppressed denials a summary could name.)
"""

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from uuid import uuid4

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from modelog_platform.adapters.commands import CommandPublisher
from modelog_platform.identity.tokens import Identity
from modelog_platform.settings import DENIALS_TOPIC
from modelog_platform.web import ApiError

log = logging.getLogger("registrar.denials")

ANONYMOUS = "anonymous"
NO_MODEL = "-"  # the key of a denial that names no model
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
COMMAND_EXTRA = "x-modelog-command"  # a write route's openapi_extra key: the command it publishes
QUEUE_SIZE = 1000
SEND_TIMEOUT_S = 5.0
FLUSH_EVERY_S = 1.0


def publishes(command: type) -> dict:
    """A write route's decorator arguments naming the command it publishes:
    shown in the OpenAPI document, and recorded with a refused attempt."""
    return {"openapi_extra": {COMMAND_EXTRA: command.__name__}}


# The pure core: a fixed window per subject.

@dataclass(frozen=True)
class Window:
    started: datetime
    recorded: int = 0
    suppressed: int = 0
    first_suppressed: datetime | None = None
    last_suppressed: datetime | None = None


def admit(window: Window | None, now: datetime, per_window: int, length: timedelta) -> tuple[Window, bool, Window | None]:
    """One denial of a subject at `now`: the subject's window after it, whether
    it is recorded, and the window it closed (if `now` is past its end)."""
    closed = None
    if window is None or now >= window.started + length:
        closed, window = window, Window(started=now)
    if window.recorded < per_window:
        return replace(window, recorded=window.recorded + 1), True, closed
    return replace(window, suppressed=window.suppressed + 1, first_suppressed=window.first_suppressed or now,
                   last_suppressed=now), False, closed


def ended(windows: dict[str, Window], now: datetime, length: timedelta) -> list[str]:
    """The subjects whose window is over."""
    return [subject for subject, w in windows.items() if now >= w.started + length]


def summary(subject: str, window: Window, length: timedelta) -> dict | None:
    """The record of a window's suppressed denials; None if it suppressed none."""
    if not window.suppressed:
        return None
    assert window.first_suppressed is not None and window.last_suppressed is not None
    first, last = window.first_suppressed.isoformat(), window.last_suppressed.isoformat()
    return {"denial_id": str(uuid4()), "kind": "summary", "at": last, "subject": subject,
            "suppressed": window.suppressed, "first_at": first, "last_at": last,
            "window_start": window.started.isoformat(), "window_end": (window.started + length).isoformat(),
            "message": f"{window.suppressed} more denials of {subject} suppressed between {first} and {last}"}


def denial(request: Request, status: int, code: str, message: str, now: datetime) -> dict:
    """The record of one refused write: who, what, when, why."""
    caller: Identity | None = getattr(request.state, "caller", None)
    route = request.scope.get("route")
    params = request.scope.get("path_params") or {}
    version = params.get("version")
    who: dict[str, object] = (
        {"subject": caller.subject, "roles": list(caller.roles), "issuer": caller.issuer, "authenticated": True}
        if caller is not None else
        # A 401's message says why the token proved nothing; any other refusal
        # before authentication has no token problem to name.
        {"subject": ANONYMOUS, "roles": [], "issuer": None, "authenticated": False,
         "token_problem": message if status == 401 else None})
    return {"denial_id": str(uuid4()), "kind": "denial", "at": now.isoformat(), **who,
            "method": request.method, "route": getattr(route, "path", request.url.path),
            "path": request.url.path,
            "model": params.get("name") or getattr(request.state, "command_model", None),
            "version": int(str(version)) if str(version).isdigit() else None,
            "command_type": (getattr(route, "openapi_extra", None) or {}).get(COMMAND_EXTRA),
            "status": status, "code": code, "message": message}


# The shell: a queue, a sender, and the error handlers that feed them.

class DenialLog:
    def __init__(self, publisher: CommandPublisher, per_minute: int, topic: str = DENIALS_TOPIC,
                 queue_size: int = QUEUE_SIZE, window: timedelta = timedelta(minutes=1)):
        self.publisher, self.topic = publisher, topic
        self.per_window, self.window = per_minute, window
        self.queue: asyncio.Queue[dict] = asyncio.Queue(queue_size)
        self.windows: dict[str, Window] = {}
        self.dropped = 0  # records lost to a full queue or a failed send
        self.sender: asyncio.Task | None = None

    def start(self) -> None:
        self.sender = asyncio.create_task(self._send_forever(), name="denial records")

    async def stop(self) -> None:
        """Whatever is summarised by now goes out (within the send timeout); the rest is dropped."""
        for subject in list(self.windows):
            self._close(subject)
        if self.sender is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.queue.join(), SEND_TIMEOUT_S)
            self.sender.cancel()
            await asyncio.gather(self.sender, return_exceptions=True)

    def refused(self, record: dict, now: datetime) -> None:
        """Record a refusal, within its subject's budget; never blocks, never raises."""
        subject = record["subject"]
        window, recorded, closed = admit(self.windows.get(subject), now, self.per_window, self.window)
        self.windows[subject] = window
        if closed is not None:
            self._put(summary(subject, closed, self.window))
        if recorded:
            self._put(record)

    def _close(self, subject: str) -> None:
        self._put(summary(subject, self.windows.pop(subject), self.window))

    def _put(self, record: dict | None) -> None:
        if record is None:
            return
        try:
            self.queue.put_nowait(record)
        except asyncio.QueueFull:
            self._drop(record, "the queue is full")

    def _drop(self, record: dict, why: str) -> None:
        self.dropped += 1
        log.warning("denial record dropped (%s; %s dropped so far): %s %s of %s, %s %s", why, self.dropped,
                    record.get("method", ""), record.get("path", ""), record["subject"],
                    record.get("status", ""), record.get("code", record.get("kind")))

    async def _send_forever(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                record = await asyncio.wait_for(self.queue.get(), FLUSH_EVERY_S)
                await self._send(record)
                self.queue.task_done()
            for subject in ended(self.windows, datetime.now(timezone.utc), self.window):
                self._close(subject)

    async def _send(self, record: dict) -> None:
        try:
            await asyncio.wait_for(self.publisher.publish_denial(
                json.dumps(record).encode(), record.get("model") or NO_MODEL, self.topic), SEND_TIMEOUT_S)
        except Exception as error:  # Kafka slow or away: the refusal was answered; the record is lost
            self._drop(record, f"not sent: {type(error).__name__} {error}".strip())


def install(app: FastAPI, also: tuple[type[Exception], ...] = ()) -> None:
    """Every 4xx answer to a write that never became a command is recorded
    (app.state.denials, made in the lifespan). Wraps the handlers
    install_error_handlers put there (and those of the `also` kinds), so what
    is recorded is what was answered."""
    for kind in (ApiError, RequestValidationError, *also):
        app.exception_handlers[kind] = _recording(app.exception_handlers[kind])


def refusal_of(body: dict) -> tuple[str, str]:
    """(code, message) of an error body: modelog's `{"error": {...}}` or MLflow's
    `{"error_code", "message"}` (the registrar's MLflow API answers in those)."""
    if "error_code" in body:
        return str(body["error_code"]), str(body.get("message", ""))
    error = body.get("error", {})
    return error.get("code", ""), error.get("message", "")


def _recording(render):
    async def handler(request: Request, error: Exception) -> Response:
        response = await render(request, error)
        if (400 <= response.status_code < 500 and request.method in WRITE_METHODS
                and "route" in request.scope and not getattr(request.state, "submitted", False)):
            try:
                code, message = refusal_of(json.loads(bytes(response.body)))
                now = datetime.now(timezone.utc)
                request.app.state.denials.refused(denial(request, response.status_code, code, message, now), now)
            except Exception:  # the refusal is answered as it is, recorded or not
                log.exception("denial of %s %s not recorded", request.method, request.url.path)
        return response
    return handler
