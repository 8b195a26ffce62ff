"""MLflow's webhooks, kept beside modelog's own: create, list, get, update,
delete and test, in MLflow's request and response shapes. The registrar serves
them under MLflow's paths (registrar/mlflow/webhooks.py) and passes them here,
where the webhooks and their outbox live. An MLflow webhook watches every
model, so registering, changing, removing or testing one needs `admin` on
every model, and reading them `reader` on every model (docs/mlflow-webhooks.md).
"""

import base64
import binascii
import json
import re
import time
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import urlparse
from uuid import UUID, uuid4

import httpx
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, ValidationError

from modelog_platform.identity import permissions
from modelog_platform.identity.http import Caller, authorize_every_model
from modelog_platform.web import ApiError, invalid_request_message
from projector import mlflow_payloads
from projector.mlflow_payloads import MLFLOW_EVENTS, UnknownEvent

router = APIRouter(prefix="/mlflow")
STATUSES = ("ACTIVE", "DISABLED")
URL_SCHEMES = ("http", "https")
# MLflow's rule for a webhook's name.
NAME = re.compile(r"(?=.{1,63}$)[a-z0-9]([a-z0-9._-]*[a-z0-9])?", re.IGNORECASE)
TEST_TIMEOUT_S = 10.0


class WireEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")
    entity: str
    action: str


class NewWebhook(BaseModel):
    model_config = ConfigDict(extra="ignore")  # MLflow's server ignores fields it does not know
    name: str
    url: str
    events: list[WireEvent]
    modelog_events: list[WireEvent] = []  # as a webhook is shown: accepted back as given
    description: str | None = None
    secret: str | None = None
    status: str | None = None


class WebhookChange(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = None
    url: str | None = None
    events: list[WireEvent] | None = None
    modelog_events: list[WireEvent] | None = None
    description: str | None = None
    secret: str | None = None
    status: str | None = None


class WebhookTest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    event: WireEvent | None = None


def invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_parameter_value", message)


Request_ = TypeVar("Request_", bound=BaseModel)


def parsed(kind: type[Request_], body: Any) -> Request_:
    try:
        return kind.model_validate(body if body is not None else {})
    except ValidationError as error:
        problems = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()]
        raise invalid(invalid_request_message(problems)) from None


def checked_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise invalid(f"Webhook name {name!r} is invalid. It must start and end with a letter or digit, be "
                      "less than 63 characters long, and contain only letters, digits, dots (.), "
                      "underscores (_), and hyphens (-).")
    return name


def checked_url(url: str) -> str:
    if not url.strip():
        raise invalid(f"Webhook URL cannot be empty or just whitespace: {url!r}")
    try:  # what the deliverer could not send to is refused now, not found out at every event
        parts = urlparse(url)
        parts.port  # noqa: B018 (it raises for a port out of range)
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as error:
        raise invalid(f"Invalid webhook URL {url!r}: {error}") from None
    if parts.scheme not in URL_SCHEMES:
        raise invalid(f"Invalid webhook URL scheme: {parts.scheme!r}. Allowed schemes are: "
                      f"{', '.join(URL_SCHEMES)}.")
    if not parts.hostname:
        raise invalid(f"Webhook URL must include a hostname: {url!r}")
    return url


def checked_events(*lists: list[WireEvent] | None) -> list[str]:
    """The events named, MLflow's and modelog's alike, each once, in order."""
    given = [event for events in lists for event in events or []]
    if not given:
        raise invalid("Webhook events must be a non-empty list of events")
    try:
        names = [mlflow_payloads.event_name(event.entity, event.action) for event in given]
    except UnknownEvent as error:
        raise invalid(str(error)) from None
    return list(dict.fromkeys(names))


def checked_status(status: str) -> bool:
    """True for ACTIVE: whether the webhook is sent events."""
    if status.upper() not in STATUSES:
        raise invalid(f"Invalid webhook status {status!r}: use one of {', '.join(STATUSES)}")
    return status.upper() == "ACTIVE"


def millis(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def view(row) -> dict[str, Any]:
    """A webhook as MLflow shows one (never its secret). MLflow's client knows
    only MLflow's own events, so modelog's go in a field of their own, which
    that client ignores."""
    shown: dict[str, Any] = {
        "webhook_id": str(row["id"]), "name": row["name"], "url": row["url"],
        "events": [mlflow_payloads.wire_event(e) for e in row["events"] if e in MLFLOW_EVENTS],
        "modelog_events": [mlflow_payloads.wire_event(e) for e in row["events"] if e not in MLFLOW_EVENTS],
        "status": "ACTIVE" if row["active"] else "DISABLED",
        "creation_timestamp": millis(row["created_at"]),
        "last_updated_timestamp": millis(row["updated_at"] or row["created_at"])}
    if row["description"]:
        shown["description"] = row["description"]
    return shown


def has_nul(value: Any) -> bool:
    """PostgreSQL's text holds no NUL character: such a value is refused, not a 500."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(map(has_nul, value))
    return False


async def body_of(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise invalid("the request body is not JSON") from None
    if has_nul(body):
        raise invalid("the request holds a NUL character")
    return body


async def mlflow_webhook(conn, webhook_id: str):
    """The MLflow webhook with this id; MLflow's not-found otherwise."""
    try:
        key = UUID(webhook_id)
    except ValueError:
        key = None
    row = key and await conn.fetchrow("SELECT * FROM webhooks WHERE id = $1 AND kind = 'mlflow'", key)
    if not row:
        raise ApiError(404, "webhook_not_found", f"Webhook with ID {webhook_id} not found.")
    return row


def page_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.b64decode(token, validate=True))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise invalid(f"Invalid page token {token!r}") from None
    if not isinstance(offset, int) or not 0 <= offset < 2**62:
        raise invalid(f"Invalid page token {token!r}")
    return offset


def page_token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


@router.post("")
async def create(request: Request, caller: Caller):
    authorize_every_model(caller, permissions.ADMIN)
    new = parsed(NewWebhook, await body_of(request))
    events = checked_events(new.events, new.modelog_events)
    active = checked_status(new.status) if new.status else True
    now = datetime.now(timezone.utc)
    async with request.app.state.pool.acquire() as conn:
        row = await conn.fetchrow(
            "INSERT INTO webhooks (id, url, secret, model, types, created_at, active, kind, name, description,"
            " events, updated_at) VALUES ($1, $2, $3, NULL, '{}', $4, $5, 'mlflow', $6, $7, $8, $4) RETURNING *",
            uuid4(), checked_url(new.url), new.secret or "", now, active, checked_name(new.name),
            new.description or None, events)
    return {"webhook": view(row)}


@router.get("")
async def list_webhooks(request: Request, caller: Caller, max_results: int | None = Query(None),
                        page_token_: str | None = Query(None, alias="page_token")):
    """Newest first, as MLflow lists them, a page at a time."""
    authorize_every_model(caller, permissions.READER)
    limit = max_results or 100
    if not 1 <= limit <= 1000:
        raise invalid("max_results must be between 1 and 1000.")
    offset = page_offset(page_token_)
    async with request.app.state.pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM webhooks WHERE kind = 'mlflow' ORDER BY created_at DESC, id"
                                " LIMIT $1 OFFSET $2", limit + 1, offset)
    answer: dict[str, Any] = {"webhooks": [view(r) for r in rows[:limit]]}
    if len(rows) > limit:
        answer["next_page_token"] = page_token(offset + limit)
    return answer


@router.get("/{webhook_id}")
async def get(webhook_id: str, request: Request, caller: Caller):
    authorize_every_model(caller, permissions.READER)
    async with request.app.state.pool.acquire() as conn:
        return {"webhook": view(await mlflow_webhook(conn, webhook_id))}


@router.patch("/{webhook_id}")
async def update(webhook_id: str, request: Request, caller: Caller):
    """Change what is given; events given replace the events subscribed to."""
    authorize_every_model(caller, permissions.ADMIN)
    change = parsed(WebhookChange, await body_of(request))
    async with request.app.state.pool.acquire() as conn, conn.transaction():
        row = await mlflow_webhook(conn, webhook_id)
        events = (checked_events(change.events, change.modelog_events)
                  if change.events or change.modelog_events else list(row["events"]))
        row = await conn.fetchrow(
            "UPDATE webhooks SET name = $2, url = $3, events = $4, description = $5, secret = $6, active = $7,"
            " updated_at = $8 WHERE id = $1 RETURNING *", row["id"],
            checked_name(change.name) if change.name else row["name"],
            checked_url(change.url) if change.url else row["url"], events,
            row["description"] if change.description is None else change.description,
            row["secret"] if change.secret is None else change.secret,
            row["active"] if change.status is None else checked_status(change.status),
            datetime.now(timezone.utc))
    return {"webhook": view(row)}


@router.delete("/{webhook_id}")
async def delete(webhook_id: str, request: Request, caller: Caller):
    """Gone with its queue: nothing more is sent to it."""
    authorize_every_model(caller, permissions.ADMIN)
    async with request.app.state.pool.acquire() as conn:
        row = await mlflow_webhook(conn, webhook_id)
        await conn.execute("DELETE FROM webhooks WHERE id = $1", row["id"])
    return {}


@router.post("/{webhook_id}/test")
async def test(webhook_id: str, request: Request, caller: Caller):
    """Send one example of an event (the webhook's first without one named),
    signed as every delivery is, and say what the receiver answered. Outside
    the outbox: a test is sent once, now, and never retried."""
    authorize_every_model(caller, permissions.ADMIN)
    asked = parsed(WebhookTest, await body_of(request)).event
    async with request.app.state.pool.acquire() as conn:
        row = await mlflow_webhook(conn, webhook_id)
    name = checked_events([asked])[0] if asked else row["events"][0]
    body = json.dumps(mlflow_payloads.envelope(name, mlflow_payloads.EXAMPLES[name],
                                               datetime.now(timezone.utc).isoformat())).encode()
    headers = mlflow_payloads.headers(row["secret"], str(uuid4()), int(time.time()), body)
    try:
        async with httpx.AsyncClient(timeout=TEST_TIMEOUT_S) as http:
            response = await http.post(row["url"], content=body, headers=headers)
    except (httpx.HTTPError, httpx.InvalidURL) as failure:
        return {"result": {"success": False, "error_message": f"Failed to test webhook: {failure!r}"}}
    return {"result": {"success": response.status_code < 400, "response_status": response.status_code,
                       "response_body": response.text}}
