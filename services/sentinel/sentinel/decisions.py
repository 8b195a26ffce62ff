"""A breach becomes a request to the registrar, the one write path, as the
sentinel's own service identity (operator role), with the evidence attached.

The request applies only at the model's seq the breach was judged on
(If-Match), and its Idempotency-Key is a UUIDv5 of (model, version, rule,
window start, that seq); the registrar derives the command id from it and the
sentinel's identity. However often a window is judged on the same state (a
restart, a replayed changelog, a second sentinel), the breach is one command,
decided once (docs/idempotency.md); judged on a state the log has already
left, it is refused, never decided a second time.
"""

import json
import logging
from datetime import datetime
from uuid import UUID, uuid5

import httpx

from modelog_contract.domain.reasons import Reason
from modelog_contract.domain.splits import TrafficSplit, without_version
from sentinel.core import Answer, Judged
from sentinel.rules import Breach

log = logging.getLogger("sentinel.decisions")
DECISIONS = UUID("6f1d1c58-8d0e-4f55-9a55-6a3b1e0c5e21")  # the namespace of breach ids; never change it


def decision_id(model: str, version: int, rule: str, window_start: datetime, seq: int) -> UUID:
    return uuid5(DECISIONS, f"{model}\n{version}\n{rule}\n{window_start.isoformat()}\n{seq}")


def breach_id(judged: Judged) -> UUID:
    evidence = judged.breach.evidence
    return decision_id(judged.model, judged.breach.version, evidence.rule.name, evidence.window_start, judged.seq)


def answer_of(status: int, body: bytes) -> Answer:
    """What the registrar's answer shows of the request's outcome."""
    if status >= 500 or status == 429:
        return "retry"
    if status == 202:
        return "pending"
    if status == 409 and _error_code(body) == Reason.VERSION_CONFLICT.value:
        return "stale"
    return "decided" if status < 300 else "refused"


def _error_code(body: bytes) -> str | None:
    """The `code` of the registrar's error body `{"error": {"code", "message"}}`;
    None for a body of another shape (a proxy's page, say)."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return None
    return error.get("code") if isinstance(error, dict) else None


def request_for(model: str, breach: Breach, split: TrafficSplit | None) -> tuple[str, str, dict] | None:
    """(method, path, body) of the write a breach asks for; None when there is nothing left to change."""
    evidence = breach.evidence.model_dump(mode="json")
    comment = f"sentinel: {breach.evidence.rule.name}: {breach.evidence.detail}"[:5000]
    if breach.action == "rollback":
        return "POST", f"/v1/models/{model}/versions/{breach.restore}/rollback", {
            "comment": comment, "evidence": evidence}
    remaining = without_version(split, breach.version)
    if split is None or remaining == split:
        return None
    if remaining is None:  # Production alone at 100: no split
        if split.production_version is None:
            return None
        routes, shadows = [{"version": split.production_version, "weight": 100}], []
    else:
        routes = [{"version": r.version, "weight": r.weight} for r in remaining.routes]
        shadows = list(remaining.shadows)
    return "PUT", f"/v1/models/{model}/traffic-split", {
        "routes": routes, "shadows": shadows, "comment": comment, "evidence": evidence}


class Registrar:
    def __init__(self, base_url: str, auth: httpx.Auth | None, timeout_s: float = 30.0):
        self.http = httpx.AsyncClient(base_url=base_url, auth=auth, timeout=timeout_s)

    async def ask(self, judged: Judged) -> Answer:
        """Ask for the decision `judged` calls for, at the seq it was judged on."""
        model, breach = judged.model, judged.breach
        request = request_for(model, breach, judged.split)
        if request is None:
            return "decided"  # nothing left to change
        method, path, body = request
        headers = {"Idempotency-Key": str(breach_id(judged)), "If-Match": f'"{judged.seq}"'}
        try:
            response = await self.http.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as error:
            log.warning("asking the registrar failed, will ask again: %s %s: %s", method, path, error)
            return "retry"
        answer = answer_of(response.status_code, response.content)
        log.info("breach of %s by %s version %s (%s, window %s, at seq %d): %s %s -> %s %s: %s",
                 breach.evidence.rule.name, model, breach.version, breach.action,
                 breach.evidence.window_start.isoformat(), judged.seq, method, path, response.status_code,
                 answer, response.text[:500])
        return answer

    async def close(self) -> None:
        await self.http.aclose()
