"""A breach becomes a request to the registrar, the one write path, as the
sentinel's own service identity (operator role), with the evidence attached.

The Idempotency-Key is a UUIDv5 of (model, version, rule, window start), and
the registrar derives the command id from it and the sentinel's identity, so
however often a window is judged (a restart, a replayed changelog, a second
sentinel) the breach is one command, decided once (docs/idempotency.md).
"""

import logging
from datetime import datetime
from uuid import UUID, uuid5

import httpx

from modelog_contract.domain.splits import TrafficSplit, without_version
from sentinel.rules import Breach

log = logging.getLogger("sentinel.decisions")
DECISIONS = UUID("6f1d1c58-8d0e-4f55-9a55-6a3b1e0c5e21")  # the namespace of breach ids; never change it


def decision_id(model: str, version: int, rule: str, window_start: datetime) -> UUID:
    return uuid5(DECISIONS, f"{model}\n{version}\n{rule}\n{window_start.isoformat()}")


def breach_id(model: str, breach: Breach) -> UUID:
    return decision_id(model, breach.version, breach.evidence.rule.name, breach.evidence.window_start)


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

    async def ask(self, model: str, breach: Breach, split: TrafficSplit | None) -> bool:
        """Ask for the decision; True once it is settled (decided, refused, or nothing to ask)."""
        request = request_for(model, breach, split)
        if request is None:
            return True
        method, path, body = request
        key = str(breach_id(model, breach))
        try:
            response = await self.http.request(method, path, json=body, headers={"Idempotency-Key": key})
        except httpx.HTTPError as error:
            log.warning("asking the registrar failed, will ask again: %s %s: %s", method, path, error)
            return False
        settled = response.status_code < 500 and response.status_code != 429
        log.info("breach of %s by %s version %s (%s, window %s): %s %s -> %s %s", breach.evidence.rule.name, model,
                 breach.version, breach.action, breach.evidence.window_start.isoformat(), method, path,
                 response.status_code, response.text[:500])
        return settled

    async def close(self) -> None:
        await self.http.aclose()
