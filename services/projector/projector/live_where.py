"""What is live where: the latest serving report of each instance, per model
and across models, read from the serving_reports table the fold keeps.

Serving instances report (ServingReported) only when the version they serve
changes, so a report's `since` says how long an instance has been on its
version; an instance that stopped without a word still shows its last report,
with `reported_at` to judge it by. Deleted models are left out."""

from collections.abc import Iterable

import asyncpg
from fastapi import APIRouter, Depends, Query, Request

from modelog_platform.identity import permissions
from modelog_platform.identity.http import Caller, ModelReader, authenticated, authorize_role
from projector.api import model_seq, pool
from projector.queries import covered_by

router = APIRouter(prefix="/v1", dependencies=[Depends(authenticated)])
COLUMNS = "r.model, r.instance, r.version, r.since, r.host, r.target, r.reported_by, r.reported_at, r.seq"


def report_row(row: asyncpg.Record) -> dict:
    return {"model": row["model"], "instance": row["instance"], "version": row["version"],
            "since": row["since"].isoformat(), "host": row["host"], "target": row["target"],
            "reported_by": row["reported_by"], "reported_at": row["reported_at"].isoformat(), "seq": row["seq"]}


def by_version(reports: Iterable[dict]) -> list[dict]:
    """Each version served, newest first, with the instances serving it."""
    versions: dict[int, list[str]] = {}
    for report in reports:
        versions.setdefault(report["version"], []).append(report["instance"])
    return [{"version": v, "instances": sorted(versions[v])} for v in sorted(versions, reverse=True)]


async def reports_of(conn: asyncpg.Connection, name: str) -> list[dict]:
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM serving_reports r WHERE r.model = $1 ORDER BY r.instance", name)
    return [report_row(r) for r in rows]


async def reports_across(conn: asyncpg.Connection, *, grants: tuple[str, ...], after: tuple[str, str] | None,
                         limit: int) -> list[dict]:
    """Every model's reports the grants cover, by model then instance, keyset-paginated."""
    where, args = ["NOT m.deleted"], []

    def arg(value) -> str:
        args.append(value)
        return f"${len(args)}"

    if grants:
        where.append(covered_by(grants, "r.model", arg))
    if after:
        where.append(f"(r.model, r.instance) > ({arg(after[0])}, {arg(after[1])})")
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM serving_reports r JOIN models m ON m.name = r.model WHERE {' AND '.join(where)}"
        f" ORDER BY r.model, r.instance LIMIT {arg(limit)}", *args)
    return [report_row(r) for r in rows]


@router.get("/models/{name}/serving")
async def serving_of_model(name: str, request: Request, reader: ModelReader):
    """Each instance's latest report (version, since, host, target), and the
    instances per version."""
    async with pool(request).acquire() as conn:
        await model_seq(conn, name)
        reports = await reports_of(conn, name)
    return {"model": name, "instances": reports, "versions": by_version(reports)}


@router.get("/serving")
async def serving_everywhere(request: Request, caller: Caller,
                             after_model: str | None = Query(None, description="the cursor: `next` of the previous page"),
                             after_instance: str | None = None, limit: int = Query(500, ge=1, le=1000)):
    """Every instance's latest report in the models the caller's grants cover."""
    authorize_role(caller, permissions.READER)
    after = (after_model, after_instance) if after_model and after_instance else None
    async with pool(request).acquire() as conn:
        reports = await reports_across(conn, grants=caller.grants, after=after, limit=limit)
    last = reports[-1] if len(reports) == limit else None
    return {"instances": reports,
            "next": {"after_model": last["model"], "after_instance": last["instance"]} if last else None}
