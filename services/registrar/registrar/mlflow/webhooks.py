"""MLflow 3's webhooks API (create, list, get, update, delete, test) at the
registrar, so `MlflowClient().create_webhook(...)` works against modelog.

The webhooks and their delivery live in the projector (the outbox is filled
in the projection's transaction; projector/mlflow_webhooks_api.py): this
module checks the caller's role, passes the request on with the caller's own
token and answers the projector's refusals as MLflow's errors. An MLflow
webhook watches every model: writing one needs `admin` on every model,
reading them `reader` on every model (docs/mlflow-webhooks.md).
"""

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelog_platform.identity import permissions
from modelog_platform.identity.http import Caller, authorize_every_model
from modelog_platform.web import ApiError
from registrar.mlflow.errors import MlflowError, mlflow_error_of
from registrar.reads import callers_headers

router = APIRouter(prefix="/webhooks")
PROJECTOR_PATH = "/v1/webhooks/mlflow"


async def passed_on(request: Request, method: str, path: str = "") -> JSONResponse:
    """The projector's answer to the same request; its refusal as MLflow's error."""
    response = await request.app.state.outcomes.http.request(
        method, PROJECTOR_PATH + path, params=request.query_params, content=await request.body(),
        headers={**callers_headers(request), "Content-Type": "application/json"})
    if response.is_success:
        return JSONResponse(response.json(), response.status_code)
    try:
        error = response.json()["error"]
        refusal = ApiError(response.status_code, error["code"], error["message"])
    except (ValueError, KeyError, TypeError):
        raise MlflowError("INTERNAL_ERROR", f"the projector answered {response.status_code}") from None
    raise mlflow_error_of(refusal)


@router.post("")
async def create_webhook(request: Request, caller: Caller):
    authorize_every_model(caller, permissions.ADMIN)
    return await passed_on(request, "POST")


@router.get("")
async def list_webhooks(request: Request, caller: Caller):
    authorize_every_model(caller, permissions.READER)
    return await passed_on(request, "GET")


@router.get("/{webhook_id}")
async def get_webhook(webhook_id: str, request: Request, caller: Caller):
    authorize_every_model(caller, permissions.READER)
    return await passed_on(request, "GET", f"/{quote(webhook_id, safe='')}")


@router.patch("/{webhook_id}")
async def update_webhook(webhook_id: str, request: Request, caller: Caller):
    authorize_every_model(caller, permissions.ADMIN)
    return await passed_on(request, "PATCH", f"/{quote(webhook_id, safe='')}")


@router.delete("/{webhook_id}")
async def delete_webhook(webhook_id: str, request: Request, caller: Caller):
    authorize_every_model(caller, permissions.ADMIN)
    return await passed_on(request, "DELETE", f"/{quote(webhook_id, safe='')}")


@router.post("/{webhook_id}/test")
async def test_webhook(webhook_id: str, request: Request, caller: Caller):
    """The projector sends one example now and answers what the receiver said."""
    authorize_every_model(caller, permissions.ADMIN)
    return await passed_on(request, "POST", f"/{quote(webhook_id, safe='')}/test")
