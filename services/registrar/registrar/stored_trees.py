"""Trees in the content-addressed store: a tree's files copied in, each under
its own sha256, with a manifest that pins them all (manifest.py), and a
version's files found again by the form its VersionRegistered recorded.

Two doors bring trees in: MLflow's API copies a version's source
(mlflow/sources.py), modelog's own API takes a directory uploaded whole
(uploaded_trees.py). Both hand a Tree to copy_in; both the MLflow artifact
proxy and the native file reads list a version with files_of."""

import hashlib
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from modelog_contract.domain.types import Artifact
from modelog_platform.adapters.s3 import ArtifactStore, CorruptArtifact
from modelog_platform.web import ApiError
from registrar import manifest

Sink = Callable[[bytes], None]
# The name a version registered as one file is listed under, as a tree of that one file.
ONE_FILE_NAME = "artifact"


class Tree(Protocol):
    async def file_paths(self) -> list[str]:
        """Every file's path relative to the tree's root."""
        ...

    async def read(self, path: str, sink: Sink) -> None:
        """Feed the file's bytes to sink, chunk by chunk."""
        ...


def too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "artifact_too_large",
                    f"the files exceed the registry's upload limit of {max_bytes} bytes in all "
                    "(MODELOG_MAX_UPLOAD_BYTES): leave out what serving does not need, or ask the "
                    "registry's operator for a larger limit")


class _Budget:
    """The bytes a tree may still bring in, so a huge tree is refused, not stored."""

    def __init__(self, max_bytes: int):
        self.max_bytes = self.left = max_bytes

    def take(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise too_large(self.max_bytes)


class _HashingFile:
    """A spool file that hashes, counts and budgets what it is fed."""

    def __init__(self, directory: Path, budget: _Budget):
        self.path = directory / f"file-{id(self)}"
        self.file = self.path.open("wb")
        self.digest, self.size, self.budget = hashlib.sha256(), 0, budget

    def __call__(self, chunk: bytes) -> None:
        self.budget.take(len(chunk))
        self.size += len(chunk)
        self.digest.update(chunk)
        self.file.write(chunk)


async def copy_in(tree: Tree, store: ArtifactStore, max_bytes: int, claimed_sha256: str | None = None) -> Artifact:
    """Every file of the tree into the store by its sha256, then the manifest
    by its own: the manifest's digest is the version's. `claimed_sha256`: the
    manifest digest the caller expects; another is refused before the manifest
    is stored (the files stored by then are swept as orphans)."""
    budget, files = _Budget(max_bytes), []
    with tempfile.TemporaryDirectory(prefix="modelog-tree-") as spool:
        for path in manifest.check_paths(await tree.file_paths()):
            sink = _HashingFile(Path(spool), budget)
            try:
                await tree.read(path, sink)
            finally:
                sink.file.close()
            sha256 = sink.digest.hexdigest()
            await store.put_file(sink.path, sha256)
            sink.path.unlink()
            files.append(manifest.ManifestFile(path, sink.size, sha256))
    document = manifest.build(files)
    sha256 = hashlib.sha256(document).hexdigest()
    if claimed_sha256 is not None and claimed_sha256.lower() != sha256:
        raise ApiError(400, "digest_mismatch",
                       f"the tree's manifest hashes to sha256 {sha256}, not the {claimed_sha256} sent: "
                       "a file changed on the way, or the manifest was computed over other files",
                       expected=claimed_sha256, actual=sha256)
    await store.put_bytes(document, sha256)
    return Artifact(uri=store.uri(sha256), sha256=sha256, size=len(document), form="manifest")


class Unverified(Exception):
    """The version keeps a source modelog could not read: it has no stored files."""


async def files_of(store: ArtifactStore, row: Mapping[str, Any]) -> list[manifest.ManifestFile]:
    """The files of a version (`row`: the projector's version read model), by
    the form its registration recorded, never by what its stored bytes look
    like: a file is a tree of that one file, even if its bytes would parse as
    a manifest; a manifest is read, digest-checked and parsed. Raises
    Unverified, and the store's ObjectMissing and CorruptArtifact; a stored
    manifest that no longer parses is CorruptArtifact too."""
    form, sha256 = row["artifact_form"], row["artifact_sha256"]
    if form == "unverified":
        raise Unverified(row["artifact_uri"])
    if form == "file":
        return [manifest.ManifestFile(ONE_FILE_NAME, row["artifact_size"], sha256)]
    stored = await store.read_verified(sha256)
    try:
        return manifest.parse(stored)
    except manifest.InvalidManifest as why:
        raise CorruptArtifact(f"the manifest {sha256} is no manifest modelog wrote: {why}") from None
