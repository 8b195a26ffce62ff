"""The state the decider needs of one model, folded from its events."""

from uuid import UUID

from modelog.domain.chain import GENESIS_HASH
from modelog.domain.types import Artifact, Frozen


class VersionState(Frozen):
    version: int
    artifact: Artifact


class ModelState(Frozen):
    name: str
    exists: bool = False
    seq: int = 0
    head_hash: str = GENESIS_HASH
    versions: dict[int, VersionState] = {}
    # Command ids already decided: a retried command yields its events once.
    decided: frozenset[UUID] = frozenset()

    @property
    def next_version(self) -> int:
        return max(self.versions, default=0) + 1
