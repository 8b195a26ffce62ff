"""Artifact uploads: hashed while read in chunks, size-limited, checked against a
client-given digest, and only then stored, so bad input writes nothing."""

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fastapi import UploadFile

from modelog.web import ApiError

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ReceivedFile:
    path: Path
    sha256: str
    size: int


async def receive(upload: UploadFile, max_bytes: int, claimed_sha256: str | None) -> ReceivedFile:
    digest, size = hashlib.sha256(), 0
    spool = tempfile.NamedTemporaryFile(prefix="modelog-upload-", delete=False)
    try:
        with spool:
            while chunk := await upload.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise ApiError(413, "artifact_too_large", f"artifact exceeds {max_bytes} bytes")
                digest.update(chunk)
                spool.write(chunk)
        if size == 0:
            raise ApiError(400, "empty_artifact", "the uploaded artifact has no bytes")
        actual = digest.hexdigest()
        if claimed_sha256 is not None and claimed_sha256.lower() != actual:
            raise ApiError(400, "digest_mismatch",
                           f"the bytes hash to sha256 {actual}, not the {claimed_sha256} sent",
                           expected=claimed_sha256, actual=actual)
        return ReceivedFile(Path(spool.name), actual, size)
    except BaseException:
        Path(spool.name).unlink(missing_ok=True)
        raise
