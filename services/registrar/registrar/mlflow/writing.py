"""An MLflow write is one modelog command through the registrar's one write
path (WriteContext: the caller's identity, permissions, rate limit, signing),
and its outcome said in MLflow's words: a refusal by the promoter becomes the
MLflow error a client branches on, a gate refusal lists the rules that failed,
and a transition left waiting for approvals is an error that names the
pending request and how to approve it, never a 200 that moved nothing."""

import json

from modelog_contract.domain import Command
from modelog_platform.web import ApiError
from registrar.mlflow.errors import MlflowError, mlflow_error_of
from registrar.writes import WriteContext


def failed_rules(rule_results: list[dict]) -> str:
    failed = [r for r in rule_results if not r.get("passed")]
    return "; ".join(f"{r['rule']}: {r['detail']}" for r in failed) or "no rule result was recorded"


def refusal(error: ApiError, command: Command) -> MlflowError:
    """The promoter's refusal of `command` as an MLflow error."""
    match error.code:
        case "model_exists":
            return MlflowError("RESOURCE_ALREADY_EXISTS", f"Registered Model (name={command.model}) already exists.",
                               error.code)
        case "model_not_found" | "model_deleted":
            return MlflowError("RESOURCE_DOES_NOT_EXIST",
                               f"Registered Model with name={command.model} not found", error.code)
        case "version_not_found" | "version_deleted":
            version = getattr(command, "version", None)
            return MlflowError("RESOURCE_DOES_NOT_EXIST",
                               f"Model Version (name={command.model}, version={version}) not found", error.code)
        case "gate_failed":
            return MlflowError("INVALID_PARAMETER_VALUE",
                               f"modelog's policy for {command.model!r} refused the transition; failed rules: "
                               + failed_rules(error.details.get("rule_results", [])), error.code)
    return mlflow_error_of(error)


def pending_approval(command: Command, request_id: str, registrar_path: str) -> MlflowError:
    version = getattr(command, "version", None)
    to_stage = getattr(command, "to_stage", None)
    return MlflowError(
        "PERMISSION_DENIED",
        f"modelog's policy needs approvals before version {version} of {command.model!r} moves to {to_stage}: "
        f"the request {request_id} is pending and the version has not moved. Someone other than the "
        f"requester and the registrant, holding the approver role, approves it with "
        f"`modelog approve {command.model} {request_id}` or POST {registrar_path}; the version moves then.",
        "approval_pending")


async def decided(write: WriteContext, command: Command) -> dict:
    """The accepted outcome's body (events, the model's state after it), or the MLflow error."""
    try:
        answer = await write.submit(command)
    except ApiError as error:
        raise refusal(error, command) from None
    body = json.loads(bytes(answer.body))
    if body.get("status") == "pending":
        # Retrying would publish the command again: say where its outcome will be instead.
        raise MlflowError("RESOURCE_CONFLICT",
                          f"modelog took the command {body['command_id']} but has not committed its outcome yet; "
                          f"GET {body['status_url']} says what became of it before anything is retried",
                          "outcome_pending")
    if "TransitionRequested" in body["events"] and "StageChanged" not in body["events"]:
        path = f"/v1/models/{command.model}/transitions/{body['request_id']}/approve"
        raise pending_approval(command, body["request_id"], path)
    return body
