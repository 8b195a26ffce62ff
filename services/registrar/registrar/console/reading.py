"""The console's reads: the projector's read models and the auditor's trail,
asked over HTTP with the signed-in person's own authority (a short-lived
token for their subject, roles and grants), as the API's passed-through reads
carry the caller's token. A model outside their grants is refused by the
service that holds it, not hidden by the console."""

import asyncio
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx
from fastapi import Request

from modelog_contract.domain.policy import DEFAULT_POLICY, DEFAULT_POLICY_STREAM, Policy
from modelog_contract.domain.state import ModelState
from registrar.console.sessions import Session

# How long a page waits for the auditor to reach the seq the projector showed,
# before it shows what the auditor has.
AUDITOR_CATCH_UP_S = 5.0


@dataclass(frozen=True)
class Refused(Exception):
    """A read the service refused: its status and its reason."""

    status: int
    code: str
    message: str


class Reads:
    def __init__(self, request: Request, session: Session):
        state = request.app.state
        self.projector: httpx.AsyncClient = state.outcomes.http
        self.auditor: httpx.AsyncClient = state.console.auditor
        self.headers = {"Authorization": f"Bearer {state.console.read_token(session.identity)}"}

    async def projector_get(self, path: str, **params: Any) -> dict:
        return answer(await self.projector.get(path, params=_given(params), headers=self.headers))

    async def auditor_get(self, path: str, **params: Any) -> dict:
        try:
            response = await self.auditor.get(path, params=_given(params), headers=self.headers)
        except httpx.TransportError as error:
            raise Refused(503, "auditor_unreachable", f"the auditor did not answer: {error}") from None
        return answer(response)

    async def maybe(self, read) -> Any:
        """The answer, or None where the service refused or does not know it."""
        try:
            return await read
        except Refused:
            return None

    async def model_state(self, name: str, at_seq: int | None = None) -> ModelState | None:
        """The model as the auditor has it: aliases with protection, policy,
        pending requests. With `at_seq` (the seq the projector answered at), at
        least that far: the auditor follows the log on its own, so just after a
        write it may not hold the event the rest of the page already shows."""
        deadline = asyncio.get_running_loop().time() + AUDITOR_CATCH_UP_S
        while at_seq is not None:
            try:
                found = await self.auditor_get(f"/v1/audit/models/{name}/state", seq=at_seq)
                return ModelState.model_validate(found["state"])
            except Refused as refused:
                if refused.code not in ("seq_not_found", "model_not_found") or \
                        asyncio.get_running_loop().time() > deadline:
                    break
            await asyncio.sleep(0.05)
        now = datetime.now(timezone.utc).isoformat()
        found = await self.maybe(self.auditor_get(f"/v1/audit/models/{name}/state", at=now))
        return ModelState.model_validate(found["state"]) if found else None

    async def policy_in_force(self, state: ModelState | None) -> tuple[Policy, str]:
        """The model's own policy, else the registry's default, and which it is."""
        if state is not None and state.policy is not None:
            return state.policy, "the model's own policy"
        default = await self.model_state(DEFAULT_POLICY_STREAM)
        if default is not None and default.policy is not None:
            return default.policy, "the registry's default policy"
        return DEFAULT_POLICY, "the built-in default policy"

    async def gather(self, *reads) -> list[Any]:
        return list(await asyncio.gather(*reads))


def answer(response: httpx.Response) -> dict:
    if response.is_success:
        return response.json()
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    raise Refused(response.status_code, error.get("code", str(response.status_code)),
                  error.get("message", response.text[:500]))


def _given(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v not in (None, "")}
