"""Artifacts coming in: hashed while read in chunks to a spool file, size-limited,
checked against a client-given digest, and only then stored, so bad input
writes nothing. Never held whole in memory. A directory comes in as several
file parts, each named by its path inside it (UploadedTree), and is stored
as a tree with its manifest (stored_trees.copy_in)."""

import asyncio
import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fastapi import UploadFile

from modelog_contract.domain.types import Artifact
from modelog_platform.adapters.s3 import ArtifactStore, ObjectMissing
from modelog_platform.web import ApiError
from registrar import manifest
from registrar.stored_trees import Sink, copy_in, too_large

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ReceivedFile:
    path: Path
    sha256: str
    size: int


class Spool:
    """A temporary file that hashes and counts what is written to it."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.digest, self.size = hashlib.sha256(), 0
        # Kept open across chunks and closed by finish()/discard(), not by a with block.
        self.file = tempfile.NamedTemporaryFile(prefix="modelog-upload-", delete=False)  # noqa: SIM115
        self.path = Path(self.file.name)

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise ApiError(413, "artifact_too_large", f"artifact exceeds {self.max_bytes} bytes")
        self.digest.update(chunk)
        self.file.write(chunk)

    def finish(self, claimed_sha256: str | None) -> ReceivedFile:
        self.file.close()
        if self.size == 0:
            raise ApiError(400, "empty_artifact", "the artifact has no bytes")
        actual = self.digest.hexdigest()
        if claimed_sha256 is not None and claimed_sha256.lower() != actual:
            raise ApiError(400, "digest_mismatch",
                           f"the bytes hash to sha256 {actual}, not the {claimed_sha256} sent",
                           expected=claimed_sha256, actual=actual)
        return ReceivedFile(self.path, actual, self.size)

    def discard(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


async def receive(upload: UploadFile, max_bytes: int, claimed_sha256: str | None) -> ReceivedFile:
    spool = Spool(max_bytes)
    try:
        while chunk := await upload.read(CHUNK):
            spool.write(chunk)
        return spool.finish(claimed_sha256)
    except BaseException:
        spool.discard()
        raise


async def receive_reference(artifacts: ArtifactStore, uri: str, max_bytes: int,
                            claimed_sha256: str | None) -> ReceivedFile:
    """Read an s3://bucket/key object once into a spool, hashing it."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise ApiError(400, "invalid_artifact_uri", f"{uri!r} is not an s3://bucket/key URI")
    spool = Spool(max_bytes)
    try:
        await asyncio.to_thread(artifacts.read_object_into, bucket, key, spool.write, CHUNK)
        return spool.finish(claimed_sha256)
    except ObjectMissing:
        spool.discard()
        raise ApiError(404, "artifact_not_found", f"no object at {uri} (or the registry may not read it)") from None
    except BaseException:
        spool.discard()
        raise


class UploadedTree:
    """The file parts of one upload as a tree: each part's filename is its
    path inside the directory. Every path is checked, and the sizes added up,
    before anything is stored, so a tree the registry refuses writes nothing."""

    def __init__(self, parts: list[UploadFile], max_bytes: int):
        paths = [part.filename or "" for part in parts]
        try:
            manifest.check_paths(paths)
        except manifest.InvalidManifest as why:
            raise ApiError(400, "invalid_tree", f"{why}. Send each file of the directory as a `file` part whose "
                           "filename is its path inside the directory: relative, '/'-separated, without "
                           "'.' or '..' segments, each path once") from None
        if sum(part.size or 0 for part in parts) > max_bytes:
            raise too_large(max_bytes)
        self.parts = dict(zip(paths, parts, strict=True))

    async def file_paths(self) -> list[str]:
        return list(self.parts)

    async def read(self, path: str, sink: Sink) -> None:
        part = self.parts[path]
        await part.seek(0)
        while chunk := await part.read(CHUNK):
            await asyncio.to_thread(sink, chunk)


async def receive_tree(parts: list[UploadFile], store: ArtifactStore, max_bytes: int,
                       claimed_sha256: str | None) -> Artifact:
    """A directory uploaded whole, stored as a tree: its files, then its manifest."""
    return await copy_in(UploadedTree(parts, max_bytes), store, max_bytes, claimed_sha256)
