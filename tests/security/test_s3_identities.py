"""Each service's S3 identity against the real SeaweedFS, as the local
supervisor hands it out: allowed what its service does, refused the rest."""

import asyncio
import hashlib
import io
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from minio.retention import Retention

from modelog_platform import engines as local_engines
from modelog_platform import services
from modelog_platform.adapters.s3 import ARTIFACT_PREFIX, ArtifactStore, artifact_key, s3_client
from modelog_platform.adapters.seal_store import SEALS_PREFIX
from modelog_platform.engines.seaweedfs import SNAPSHOTS_PREFIX
from modelog_platform.settings import EngineEndpoints, LocalStack, S3Credentials

pytestmark = pytest.mark.engines

NO_SUCH_ARTIFACT = artifact_key("0" * 64)


def endpoints_of(engines: EngineEndpoints, service: str) -> EngineEndpoints:
    """What a service started by the local supervisor reads from its environment."""
    env = local_engines.service_env(engines, LocalStack(), service)
    fields = {name.removeprefix("MODELOG_").lower(): value for name, value in env.items() if value}
    return engines.model_copy(update={k: Path(v) if k.endswith("_file") else v for k, v in fields.items()})


def store_as(engines: EngineEndpoints, service: str, reconciler: bool = False) -> ArtifactStore:
    endpoints = endpoints_of(engines, service)
    credentials = endpoints.s3_reconciler_credentials() if reconciler else endpoints.s3_credentials()
    return ArtifactStore(engines, credentials=credentials)


def refused(call) -> None:
    with pytest.raises(S3Error) as error:
        call()
    assert error.value.code == "AccessDenied", error.value


def put(client: Minio, bucket: str, key: str, data: bytes, retention: Retention | None = None) -> None:
    client.put_object(bucket, key, io.BytesIO(data), len(data), retention=retention)


def present(admin: ArtifactStore, key: str) -> bool:
    try:
        admin.client.stat_object(admin.bucket, key)
        return True
    except S3Error as error:
        if error.code in ("NoSuchKey", "NoSuchObject"):
            return False
        raise


@pytest.fixture
def admin(engines) -> ArtifactStore:
    return ArtifactStore(engines)  # no identity configured: the local stack's admin


@pytest.fixture
def scratch(admin):
    """Keys a test writes or tries to; every version removed afterwards, so
    the seal chain other tests verify holds only real seals."""
    keys: list[str] = []
    yield keys
    deadline = time.monotonic() + 15  # a short retention has to run out first
    for key in keys:
        for item in admin.client.list_objects(admin.bucket, prefix=key, include_version=True):
            while True:
                try:
                    admin.client.remove_object(admin.bucket, item.object_name, version_id=item.version_id)
                    break
                except S3Error:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)


@pytest.fixture
def artifact(admin, scratch) -> tuple[str, bytes]:
    data = b"artifact " + uuid4().bytes
    sha = hashlib.sha256(data).hexdigest()
    scratch.append(artifact_key(sha))
    put(admin.client, admin.bucket, artifact_key(sha), data)
    return sha, data


@pytest.fixture
def seal_key(admin, scratch) -> str:
    """An object in the auditor's place, without retention, so only permissions keep it."""
    key = f"{SEALS_PREFIX}test-{uuid4().hex}.json"
    scratch.append(key)
    put(admin.client, admin.bucket, key, b"{}")
    return key


def environment_of(service: str) -> dict[str, str]:
    pid = services.running_pid(LocalStack(), service)
    return dict(entry.split("=", 1) for entry in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in entry)


def test_each_service_runs_as_its_own_s3_identity(stack):
    for service in ("registrar", "projector", "auditor", "promoter"):
        environ = environment_of(service)
        assert environ["MODELOG_S3_ACCESS_KEY"] == service
        assert Path(environ["MODELOG_S3_SECRET_KEY_FILE"]).stat().st_mode & 0o077 == 0
    assert environment_of("registrar")["MODELOG_S3_RECONCILER_ACCESS_KEY"] == "reconciler"


def test_the_projector_reads_artifacts_and_cannot_write_any(engines, artifact, seal_key, scratch):
    projector = store_as(engines, "projector")
    sha, data = artifact
    scratch.append(NO_SUCH_ARTIFACT)
    refused(lambda: put(projector.client, projector.bucket, NO_SUCH_ARTIFACT, b"x"))
    refused(lambda: projector.client.remove_object(projector.bucket, artifact_key(sha)))
    refused(lambda: projector.client.get_object(projector.bucket, seal_key))
    # A presigned URL carries the projector's right to read, and no more.
    assert httpx.get(projector.download_url(sha)).content == data
    upload = projector.client.presigned_put_object(projector.bucket, NO_SUCH_ARTIFACT)
    assert httpx.put(upload, content=b"x").status_code == 403


def test_the_registrar_stores_and_reads_artifacts_and_cannot_delete_them_or_seals(
        engines, admin, artifact, seal_key, scratch, tmp_path):
    registrar = store_as(engines, "registrar")
    data = b"upload " + uuid4().bytes
    sha = hashlib.sha256(data).hexdigest()
    scratch.append(artifact_key(sha))
    (tmp_path / "model.bin").write_bytes(data)
    asyncio.run(registrar.put_file(tmp_path / "model.bin", sha))
    assert asyncio.run(registrar.read_verified(sha)) == data
    asyncio.run(registrar.ping())

    refused(lambda: registrar.client.remove_object(registrar.bucket, artifact_key(artifact[0])))
    refused(lambda: registrar.client.remove_object(registrar.bucket, seal_key))
    forged = f"{SEALS_PREFIX}forged-{uuid4().hex}.json"
    scratch.append(forged)
    refused(lambda: put(registrar.client, registrar.bucket, forged, b"{}"))
    refused(lambda: list(registrar.client.list_objects(registrar.bucket, prefix="sha256/")))
    assert present(admin, artifact_key(artifact[0])) and present(admin, seal_key)


def test_the_reconciler_deletes_artifacts_and_nothing_else(engines, admin, artifact, seal_key, scratch):
    reconciler = store_as(engines, "registrar", reconciler=True)
    sha, _ = artifact
    assert sha in {stored.sha256 for stored in reconciler.stored_artifacts()}
    reconciler.remove(sha)
    assert not present(admin, artifact_key(sha))

    scratch.append(NO_SUCH_ARTIFACT)
    refused(lambda: reconciler.client.remove_object(reconciler.bucket, seal_key))
    refused(lambda: list(reconciler.client.list_objects(reconciler.bucket, prefix=SEALS_PREFIX)))
    refused(lambda: put(reconciler.client, reconciler.bucket, NO_SUCH_ARTIFACT, b"x"))
    assert present(admin, seal_key)


def test_the_auditor_writes_locked_seals_it_cannot_delete_and_cannot_touch_artifacts(
        engines, admin, artifact, scratch):
    auditor = store_as(engines, "auditor")
    key = f"{SEALS_PREFIX}test-{uuid4().hex}.json"
    scratch.append(key)
    # Locked as the auditor locks its seals, briefly, so the test can clean up.
    put(auditor.client, auditor.bucket, key, b"{}", Retention(COMPLIANCE, datetime.now(timezone.utc) + timedelta(seconds=3)))
    assert present(admin, key)

    refused(lambda: auditor.client.remove_object(auditor.bucket, key))
    scratch.append(NO_SUCH_ARTIFACT)
    refused(lambda: put(auditor.client, auditor.bucket, NO_SUCH_ARTIFACT, b"x"))
    refused(lambda: auditor.client.get_object(auditor.bucket, artifact_key(artifact[0])))
    refused(lambda: auditor.client.remove_object(auditor.bucket, artifact_key(artifact[0])))
    assert present(admin, key) and present(admin, artifact_key(artifact[0]))


def test_requests_without_valid_credentials_are_refused(engines, artifact):
    key = artifact_key(artifact[0])
    anonymous = Minio(engines.s3_endpoint, secure=engines.s3_secure, region=engines.s3_region)
    refused(lambda: anonymous.get_object(engines.artifact_bucket, key))
    refused(lambda: put(anonymous, engines.artifact_bucket, NO_SUCH_ARTIFACT, b"x"))
    assert httpx.get(f"http://{engines.s3_endpoint}/{engines.artifact_bucket}/{key}").status_code == 403
    assert httpx.get(f"http://{engines.s3_endpoint}/").status_code == 403

    for access_key, code in (("projector", "SignatureDoesNotMatch"), ("mallory", "InvalidAccessKeyId")):
        guessing = s3_client(engines, S3Credentials(access_key, os.urandom(18).hex()))
        with pytest.raises(S3Error) as error:
            guessing.get_object(engines.artifact_bucket, key)
        assert error.value.code == code


def test_the_promoter_keeps_its_snapshots_and_no_one_else_writes_them(engines, admin, artifact, seal_key, scratch):
    promoter = store_as(engines, "promoter")
    partition = f"{SNAPSHOTS_PREFIX}modelog.events/0/"
    key = f"{partition}test-{uuid4().hex}.json.gz"
    scratch.append(key)
    put(promoter.client, promoter.bucket, key, b"snapshot")
    assert promoter.client.get_object(promoter.bucket, key).read() == b"snapshot"
    assert key in [o.object_name for o in promoter.client.list_objects(promoter.bucket, prefix=partition, recursive=True)]

    forged_seal = f"{SEALS_PREFIX}forged-{uuid4().hex}.json"
    scratch.extend([forged_seal, NO_SUCH_ARTIFACT])
    refused(lambda: promoter.client.get_object(promoter.bucket, artifact_key(artifact[0])))
    refused(lambda: promoter.client.get_object(promoter.bucket, seal_key))
    refused(lambda: put(promoter.client, promoter.bucket, forged_seal, b"{}"))
    refused(lambda: put(promoter.client, promoter.bucket, NO_SUCH_ARTIFACT, b"x"))
    refused(lambda: promoter.client.remove_object(promoter.bucket, artifact_key(artifact[0])))
    refused(lambda: list(promoter.client.list_objects(promoter.bucket, prefix=ARTIFACT_PREFIX)))

    planted = f"{partition}planted-{uuid4().hex}.json.gz"
    scratch.append(planted)
    for other in (store_as(engines, "registrar"), store_as(engines, "registrar", reconciler=True),
                  store_as(engines, "projector"), store_as(engines, "auditor")):
        refused(lambda other=other: put(other.client, other.bucket, planted, b"planted"))
        refused(lambda other=other: other.client.remove_object(other.bucket, key))
    promoter.client.remove_object(promoter.bucket, key)
    assert not present(admin, key) and not present(admin, planted)
    assert present(admin, artifact_key(artifact[0])) and present(admin, seal_key)
