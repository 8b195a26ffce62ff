"""Orphaned artifacts: bytes in S3 that no version refers to.

An upload is stored before its RegisterVersion command is published; a crash in
between, or a registration the decider refuses, leaves the object behind. The
reconciler removes such objects once they are older than a grace period, which
covers registrations still on their way through the log.

A version registered from a tree (an MLflow model directory) refers to its
manifest; the files the manifest lists are referenced through it. So every
file listed by a manifest that a version uses, or that is still within the
grace period (its registration may be on its way), is kept.

It runs as an S3 identity of its own (MODELOG_S3_RECONCILER_*), allowed to list
and delete under sha256/ and nothing else; the registrar's own may not delete.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from modelog_platform.adapters.s3 import ArtifactStore, CorruptArtifact, ObjectMissing, StoredArtifact
from registrar import manifest

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
    stored = await asyncio.to_thread(lambda: list(artifacts.stored_artifacts()))
    used: dict[str, bool] = {}

    async def in_use(item: StoredArtifact) -> bool:
        if item.sha256 not in used:
            used[item.sha256] = await is_referenced(item.sha256)
        return used[item.sha256]

    listed: set[str] = set()
    for item in stored:
        if item.size <= manifest.MAX_BYTES and (not old_enough(item, now, grace) or await in_use(item)):
            listed.update(await files_listed_by(artifacts, item.sha256))
    for item in stored:
        if not old_enough(item, now, grace):
            result.too_young += 1
        elif item.sha256 in listed or await in_use(item):
            result.referenced += 1
        else:
            await asyncio.to_thread(artifacts.remove, item.sha256)
            log.info("removed orphaned artifact %s (%d bytes)", item.sha256, item.size)
            result.removed.append(item.sha256)
    return result


async def files_listed_by(artifacts: ArtifactStore, sha256: str) -> set[str]:
    """The digests of the files a stored manifest lists; none if the object is
    no manifest. A manifest that fails its digest or its form protects nothing
    it claims: it is no manifest modelog wrote."""
    try:
        head = await asyncio.to_thread(artifacts.read_head, sha256, len(manifest.OPENING))
    except ObjectMissing:  # removed since it was listed
        return set()
    if head != manifest.OPENING:
        return set()
    try:
        return {f.sha256 for f in manifest.parse(await artifacts.read_verified(sha256))}
    except (CorruptArtifact, manifest.InvalidManifest):
        log.warning("artifact %s looks like a manifest but is none; the files it names are not kept for it", sha256)
        return set()


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
