"""Artifacts in S3, content-addressed by sha256, through the minio SDK.

The SDK is synchronous, so every call runs in a worker thread. Any S3 server
works: SeaweedFS locally, AWS S3, MinIO or Ceph elsewhere.
"""

import asyncio
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from minio import Minio
from minio.credentials import Credentials, Provider
from minio.error import S3Error

from modelog_platform.settings import EngineEndpoints, S3Credentials

ARTIFACT_PREFIX = "sha256/"
MISSING = ("NoSuchKey", "NoSuchObject", "ResourceNotFound", "NoSuchBucket", "AccessDenied")


def artifact_key(sha256: str) -> str:
    return f"{ARTIFACT_PREFIX}{sha256[:2]}/{sha256}"


class ObjectMissing(Exception):
    """No such object, or none the registry's credentials may read."""


class CorruptArtifact(Exception):
    """Stored bytes that no longer hash to their address."""


@dataclass(frozen=True)
class StoredArtifact:
    sha256: str
    size: int
    last_modified: datetime


class _OnFirstUse(Provider):
    """Credentials looked up when the first request is signed, not when the
    client is built: an app that never reaches S3 (building an OpenAPI
    document, say) needs none."""

    def __init__(self, look_up: Callable[[], S3Credentials]):
        self.look_up = look_up
        self.found: Credentials | None = None

    def retrieve(self) -> Credentials:
        if self.found is None:
            credentials = self.look_up()
            self.found = Credentials(credentials.access_key, credentials.secret_key)
        return self.found


def s3_client(endpoints: EngineEndpoints, credentials: S3Credentials | None = None, **options) -> Minio:
    """A client acting as `credentials`, by default this process's own identity."""
    provider = _OnFirstUse(lambda: credentials or endpoints.s3_credentials())
    return Minio(endpoints.s3_endpoint, credentials=provider, secure=endpoints.s3_secure,
                 region=endpoints.s3_region, **options)


class ArtifactStore:
    def __init__(self, endpoints: EngineEndpoints, client: Minio | None = None,
                 credentials: S3Credentials | None = None):
        self.bucket = endpoints.artifact_bucket
        self.client = client or s3_client(endpoints, credentials)

    def uri(self, sha256: str) -> str:
        return f"s3://{self.bucket}/{artifact_key(sha256)}"

    async def put_file(self, path: Path, sha256: str) -> str:
        """Store the file under its digest; an object already there is the same bytes."""
        key = artifact_key(sha256)
        if not await self.exists(sha256):
            await asyncio.to_thread(
                self.client.fput_object, self.bucket, key, str(path),
                content_type="application/octet-stream", metadata={"sha256": sha256},
            )
        return self.uri(sha256)

    async def put_bytes(self, data: bytes, sha256: str) -> str:
        """Store small bytes (a manifest) under their digest, as put_file does."""
        if hashlib.sha256(data).hexdigest() != sha256:
            raise CorruptArtifact(f"the bytes given do not hash to {sha256}")
        if not await self.exists(sha256):
            await asyncio.to_thread(
                self.client.put_object, self.bucket, artifact_key(sha256), io.BytesIO(data), len(data),
                content_type="application/octet-stream", metadata={"sha256": sha256},
            )
        return self.uri(sha256)

    async def exists(self, sha256: str) -> bool:
        try:
            await asyncio.to_thread(self.client.stat_object, self.bucket, artifact_key(sha256))
            return True
        except S3Error as error:
            if error.code in MISSING:
                return False
            raise

    def read_object_into(self, bucket: str, key: str, sink: Callable[[bytes], None], chunk: int) -> None:
        """Feed any readable object's bytes to sink, chunk by chunk (blocking)."""
        try:
            response = self.client.get_object(bucket, key)
        except S3Error as error:
            if error.code in MISSING:
                raise ObjectMissing(f"s3://{bucket}/{key}") from error
            raise
        try:
            for part in response.stream(chunk):
                sink(part)
        finally:
            response.close()
            response.release_conn()

    def objects_under(self, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object of any readable bucket whose key starts
        with `prefix` (blocking). Nothing there, or nothing we may list: ObjectMissing."""
        try:
            for item in self.client.list_objects(bucket, prefix=prefix, recursive=True):
                if not item.is_dir:
                    yield item.object_name, item.size or 0
        except S3Error as error:
            if error.code in MISSING:
                raise ObjectMissing(f"s3://{bucket}/{prefix}") from error
            raise

    def stream_verified(self, sha256: str, chunk: int = 1024 * 1024) -> Iterator[bytes]:
        """The artifact's bytes as they are read (blocking). The last chunk is held
        back until the whole object has hashed to its address: corrupt bytes end
        the stream short (CorruptArtifact) and never arrive complete."""
        try:
            response = self.client.get_object(self.bucket, artifact_key(sha256))
        except S3Error as error:
            if error.code in MISSING:
                raise ObjectMissing(self.uri(sha256)) from error
            raise
        digest, held = hashlib.sha256(), b""
        try:
            for part in response.stream(chunk):
                digest.update(part)
                if held:
                    yield held
                held = part
        finally:
            response.close()
            response.release_conn()
        if digest.hexdigest() != sha256:
            raise CorruptArtifact(f"artifact {sha256} is corrupt in storage")
        if held:
            yield held

    def stored_artifacts(self) -> Iterator[StoredArtifact]:
        """Every content-addressed object in the bucket (blocking)."""
        for item in self.client.list_objects(self.bucket, prefix=ARTIFACT_PREFIX, recursive=True):
            yield StoredArtifact(item.object_name.rsplit("/", 1)[-1], item.size, item.last_modified)

    def remove(self, sha256: str) -> None:
        """Remove the artifact with every stored version of it (the bucket is
        versioned where Object Lock is on; artifacts carry no retention)."""
        key = artifact_key(sha256)
        for item in self.client.list_objects(self.bucket, prefix=key, include_version=True):
            if item.object_name == key:
                self.client.remove_object(self.bucket, key, version_id=item.version_id)

    async def read_verified(self, sha256: str) -> bytes:
        """The artifact's bytes, refused if they no longer hash to their address."""
        def read() -> bytes:
            response = self.client.get_object(self.bucket, artifact_key(sha256))
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()
        data = await asyncio.to_thread(read)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise CorruptArtifact(f"artifact {sha256} is corrupt in storage")
        return data

    def read_head(self, sha256: str, length: int) -> bytes:
        """The artifact's first `length` bytes, unchecked (blocking): enough to
        tell what kind of file it is without reading all of it."""
        try:
            response = self.client.get_object(self.bucket, artifact_key(sha256), offset=0, length=length)
        except S3Error as error:
            if error.code in MISSING:
                raise ObjectMissing(self.uri(sha256)) from error
            if error.code == "InvalidRange":  # an empty object (a tree's empty __init__.py) has no first byte
                return b""
            raise
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def download_url(self, sha256: str, valid_for: timedelta = timedelta(minutes=15)) -> str:
        """A presigned GET for the artifact (signed locally: no round trip)."""
        return self.client.presigned_get_object(self.bucket, artifact_key(sha256), expires=valid_for)

    def ensure_bucket(self) -> bool:
        """Create the artifact bucket if missing, with S3 Object Lock enabled
        (it can only be turned on at creation) so audit seals can be kept
        WORM; a server without Object Lock gets a plain bucket. True if created."""
        if self.client.bucket_exists(self.bucket):
            return False
        try:
            self.client.make_bucket(self.bucket, object_lock=True)
        except S3Error as error:
            if error.code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                return False
            self.client.make_bucket(self.bucket)
        return True

    async def ping(self) -> None:
        """S3 answers and takes our credentials. A HEAD of an artifact key, not
        of the bucket: a bucket HEAD needs ListBucket, which an identity that
        only reads and writes artifacts does not hold."""
        try:
            await asyncio.to_thread(self.client.stat_object, self.bucket, artifact_key("0" * 64))
        except S3Error as error:
            if error.code not in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                raise
