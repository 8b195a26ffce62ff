"""Artifacts in S3, content-addressed by sha256, through the minio SDK.

The SDK is synchronous, so every call runs in a worker thread. Any S3 server
works: SeaweedFS locally, AWS S3, MinIO or Ceph elsewhere.
"""

import asyncio
import hashlib
from datetime import timedelta
from pathlib import Path

from minio import Minio
from minio.error import S3Error

from modelog.settings import EngineEndpoints


def artifact_key(sha256: str) -> str:
    return f"sha256/{sha256[:2]}/{sha256}"


class ArtifactStore:
    def __init__(self, endpoints: EngineEndpoints, client: Minio | None = None):
        self.bucket = endpoints.artifact_bucket
        self.client = client or Minio(
            endpoints.s3_endpoint,
            access_key=endpoints.s3_access_key,
            secret_key=endpoints.s3_secret_key,
            secure=endpoints.s3_secure,
            region=endpoints.s3_region,
        )

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

    async def exists(self, sha256: str) -> bool:
        try:
            await asyncio.to_thread(self.client.stat_object, self.bucket, artifact_key(sha256))
            return True
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                return False
            raise

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
            raise ValueError(f"artifact {sha256} is corrupt in storage")
        return data

    def download_url(self, sha256: str, valid_for: timedelta = timedelta(minutes=15)) -> str:
        """A presigned GET for the artifact (signed locally: no round trip)."""
        return self.client.presigned_get_object(self.bucket, artifact_key(sha256), expires=valid_for)

    def ensure_bucket(self) -> bool:
        """Create the artifact bucket if missing; True if it was created."""
        if self.client.bucket_exists(self.bucket):
            return False
        self.client.make_bucket(self.bucket)
        return True

    async def ping(self) -> None:
        await asyncio.to_thread(self.client.bucket_exists, self.bucket)
