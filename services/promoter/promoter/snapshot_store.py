"""Where snapshots live: S3, under snapshots/ of the artifact bucket, through
the minio SDK, as the promoter's own S3 identity (allowed that prefix only).

One object per (partition, covered position); its name orders by position, so
the newest is the last name. A PUT is atomic on S3: an object is whole or
absent, and a crash mid-write leaves nothing, or an older object a restore
checks like any other. The SDK is synchronous: callers run these in a thread.
"""

import io

from minio import Minio
from minio.error import S3Error

from modelog_platform.adapters.s3 import MISSING, s3_client
from modelog_platform.settings import EVENTS_TOPIC, EngineEndpoints

SNAPSHOTS_PREFIX = "snapshots/"


def partition_prefix(partition: int) -> str:
    return f"{SNAPSHOTS_PREFIX}{EVENTS_TOPIC}/{partition}/"


def snapshot_key(partition: int, events_offset: int) -> str:
    return f"{partition_prefix(partition)}{events_offset:020d}.json.gz"


def covered_offset(key: str) -> int:
    """The events offset a snapshot's name says it covers (its next offset to read)."""
    return int(key.rsplit("/", 1)[-1].removesuffix(".json.gz"))


class SnapshotStore:
    def __init__(self, endpoints: EngineEndpoints, client: Minio | None = None):
        self.bucket = endpoints.artifact_bucket
        self.client = client or s3_client(endpoints)

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(self.bucket, key, io.BytesIO(data), len(data), content_type="application/gzip")

    def get(self, key: str) -> bytes:
        response = self.client.get_object(self.bucket, key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def keys(self, partition: int) -> list[str]:
        """The partition's snapshots, newest first."""
        found = [item.object_name for item in
                 self.client.list_objects(self.bucket, prefix=partition_prefix(partition), recursive=True)
                 if item.object_name is not None and item.object_name.endswith(".json.gz")]
        return sorted(found, key=covered_offset, reverse=True)

    def keep_newest(self, partition: int, keep: int) -> list[str]:
        """Remove all but the `keep` newest snapshots, each with every stored
        version (the bucket is versioned where Object Lock is on); returns what went."""
        removed = self.keys(partition)[keep:]
        for key in removed:
            for item in self.client.list_objects(self.bucket, prefix=key, include_version=True):
                if item.object_name == key:
                    try:
                        self.client.remove_object(self.bucket, key, version_id=item.version_id)
                    except S3Error as error:
                        if error.code not in MISSING:
                            raise
        return removed
