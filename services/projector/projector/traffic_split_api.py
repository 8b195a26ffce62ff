"""The traffic split lookup: how a model's requests are shared between its
versions right now, for serving systems that route by it (modelog's
SplitWatcher). A route of its own, beside the stage and alias lookups, with
the same ETag (the model's seq) and the same caching (serving.py)."""

from fastapi import APIRouter, Depends, Request

from modelog_platform.identity.http import ModelReader, authenticated
from projector.api import answered, pool, serving

router = APIRouter(prefix="/v1", dependencies=[Depends(authenticated)])


@router.get("/models/{name}/traffic-split")
async def traffic_split(name: str, request: Request, reader: ModelReader):
    """Each routed version with its weight in percent and each shadow, as the
    stage lookup shows a version; with no split, the Production version at 100."""
    return answered(request, name, await serving(request).traffic_split(pool(request), name))
