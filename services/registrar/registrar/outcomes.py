"""Read-your-writes: ask the projector for a command's outcome, waiting a bounded time."""

import json
from uuid import UUID

import httptools
import httpx

from modelog_contract.domain.reasons import Reason
from modelog_platform.web import ApiError
from registrar.projector_http import ProjectorHttp, authorization_of


def rejection_status(reason: str) -> int:
    """The HTTP status of a refusal, as the domain pairs it with its reason code
    (the body carries the code itself). 422 for a code this registrar does not
    know yet (a projector deployed ahead of it may report one)."""
    try:
        return Reason(reason).status
    except ValueError:
        return 422


class OutcomesUnavailable(ApiError):
    """Outcomes cannot be read now (the projector or its database away): 503, and
    a write already published answers 202 pending instead (writes.answer)."""

    def __init__(self, message: str):
        super().__init__(503, "outcomes_unavailable", message, headers={"Retry-After": "2"})


class OutcomesRefused(Exception):
    """The projector refused the registrar's own question (its token, its
    grants): a misconfigured deployment, not the caller's doing; a 500."""

    def __init__(self, status: int, body: bytes):
        super().__init__(f"the projector refused an outcome request: {status} {body[:200].decode(errors='replace')}")


class OutcomeClient:
    """The projector, asked as the registrar itself (`auth`: its service token);
    a request that carries a caller's own Authorization header keeps it."""

    def __init__(self, projector_url: str, auth: httpx.Auth | None = None):
        self.http = httpx.AsyncClient(base_url=projector_url, timeout=httpx.Timeout(35.0), auth=auth)
        # Every write asks for its outcome: on the registrar's kept connections (projector_http.py).
        self.projector = ProjectorHttp(self.http.base_url, authorization_of(self.http))

    async def wait_for(self, command_id: UUID, wait_s: float, with_state: bool = False) -> dict | None:
        """The committed outcome, or None if the projector has none within wait_s;
        `with_state`: with the model's state after it in the same answer (`state`)."""
        query = f"wait={wait_s!r}&state=true" if with_state else f"wait={wait_s!r}"
        try:
            status, body = await self.projector.get(f"/v1/commands/{command_id}?{query}")
        except (OSError, TimeoutError, httptools.HttpParserError) as error:
            raise OutcomesUnavailable(f"the projector did not answer ({type(error).__name__})") from None
        if status == 404:
            return None
        if status >= 500:  # its database away (503), or lost mid-request
            raise OutcomesUnavailable(f"the projector cannot read outcomes now: {body[:200].decode(errors='replace')}")
        if status != 200:
            raise OutcomesRefused(status, body)
        return json.loads(body)

    async def state_after(self, outcome: dict) -> dict:
        """The model (and the version the command touched) as the projector has them now:
        the outcome's own `state` when the projector answered with it, else asked for."""
        if "state" in outcome:
            return outcome["state"]
        name = outcome["model"]
        state = {"model": await self._get_or_none(f"/v1/models/{name}")}
        if outcome["version"] is not None:
            state["version"] = await self._get_or_none(f"/v1/models/{name}/versions/{outcome['version']}")
        return state

    async def _get_or_none(self, path: str) -> dict | None:
        response = await self.http.get(path)
        return response.json() if response.status_code == 200 else None

    async def close(self) -> None:
        await self.projector.close()
        await self.http.aclose()
