"""The model cache's seq check (`GET /v1/seqs`), asked of the projector on the
registrar's kept connections (projector_http.py) rather than through its
httpx client: the check runs once per batch of MLflow reads, after the
batch's requests arrived (decision 0011), so under load it runs hundreds of
times a second."""

import json
from urllib.parse import quote

from registrar.projector_http import ProjectorHttp


class SeqReadFailed(Exception):
    """The projector gave no usable answer (its status and the start of its body)."""


def seqs_of(body: bytes) -> dict[str, tuple[int, int]]:
    """`{"seqs": {name: [seq, table]}}` as (seq, table) by name."""
    return {name: (at[0], at[1]) for name, at in json.loads(body)["seqs"].items()}


class SeqReader:
    def __init__(self, projector: ProjectorHttp):
        self.projector = projector

    async def read(self, names: list[str]) -> dict[str, tuple[int, int]]:
        """The (seq, table) of those of `names` that are models, read now."""
        status, body = await self.projector.get("/v1/seqs?" + "&".join("name=" + quote(name, safe="")
                                                                          for name in names))
        if status != 200:
            raise SeqReadFailed(f"GET /v1/seqs: {status} {body[:200]!r}")
        return seqs_of(body)

    async def close(self) -> None:
        await self.projector.close()

