"""Orphaned artifacts: bytes in S3 that no version refers to.

An upload is stored before its RegisterVersion command is published; a crash in
between, or a registration the decider refuses, leaves the object behind. The
reconciler removes such objects once they are older than a grace period, which
covers registrations still on their way through the log.

It runs as an S3 identity of its own (MODELOG_S3_RECONCILER_*), allowed to list
and delete under sha256/ and nothing else; the registrar's own may not delete.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from modelog_platform.adapters.s3 import ArtifactStore, StoredArtifact

log = logging.getLogger("modelog.reconciler")


@dataclass
class Reconciled:
    removed: list[str] = field(default_factory=list)
    referenced: int = 0
    too_young: int = 0


def old_enough(stored: StoredArtifact, now: datetime, grace: timedelta) -> bool:
    return now - stored.last_modified >= grace


async def reconcile(artifacts: ArtifactStore, is_referenced: Callable[[str], Awaitable[bool]],
                    grace: timedelta, now: datetime | None = None) -> Reconciled:
    now = now or datetime.now(timezone.utc)
    result = Reconciled()
    for stored in await asyncio.to_thread(lambda: list(artifacts.stored_artifacts())):
        if not old_enough(stored, now, grace):
            result.too_young += 1
        elif await is_referenced(stored.sha256):
            result.referenced += 1
        else:
            await asyncio.to_thread(artifacts.remove, stored.sha256)
            log.info("removed orphaned artifact %s (%d bytes)", stored.sha256, stored.size)
            result.removed.append(stored.sha256)
    return result


def projector_references(http) -> Callable[[str], Awaitable[bool]]:
    """Ask the projector whether any version, deleted ones included, uses a digest."""
    async def is_referenced(sha256: str) -> bool:
        response = await http.get(f"/v1/artifacts/{sha256}")
        response.raise_for_status()
        return response.json()["referenced"]
    return is_referenced


async def reconcile_forever(artifacts: ArtifactStore, http, grace: timedelta, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await reconcile(artifacts, projector_references(http), grace)
        except Exception:  # a failed round is retried next time; serving writes matters more
            log.exception("artifact reconciliation failed")
