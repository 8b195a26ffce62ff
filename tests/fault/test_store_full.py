"""The artifact store runs out of space: the local stack's bucket gets a quota
it is already over (SeaweedFS's bucket quota, enforced by `weed shell`, which
makes an over-quota bucket read-only), uploads through the registrar are
refused with a clear 507 or 503, never a 500, publish nothing and leave no
object behind, and succeed again once the quota is lifted."""

import asyncio
import hashlib
import os
import subprocess
import time
from uuid import uuid4

import httpx
import pytest

from modelog_platform import services
from modelog_platform.adapters.s3 import ArtifactStore
from modelog_platform.engines.layout import Layout
from modelog_platform.engines.seaweedfs import SeaweedFS
from modelog_platform.settings import EngineEndpoints, LocalStack
from tests.e2e.helpers import bearer
from tests.fault.engine_faults import assert_whole_after_the_fault, log_events_of, wait_for_outcomes

pytestmark = pytest.mark.engines


def weed_shell(*commands: str) -> str:
    """Run SeaweedFS's admin shell against the test stack's master: its
    address names the gRPC port too (`host:port.grpcPort`), which is not
    SeaweedFS's HTTP port + 10000 here."""
    lay, stack = Layout(EngineEndpoints(), LocalStack(), print), LocalStack()
    master = f"127.0.0.1:{stack.seaweedfs_master_port}.{stack.seaweedfs_master_grpc_port}"
    done = subprocess.run([str(SeaweedFS().binary(lay)), "shell", f"-master={master}"],
                          input="\n".join(commands) + "\nexit\n", capture_output=True, text=True, timeout=120)
    return done.stdout + done.stderr


def upload(api: httpx.Client, model: str, data: bytes) -> httpx.Response:
    return api.post(f"/v1/models/{model}/versions", files={"file": ("model.bin", data)})


def test_a_full_artifact_store_refuses_uploads_clearly_stores_nothing_and_recovers(stack, engines):
    run = uuid4().hex[:6]
    model, bucket = f"full-{run}", EngineEndpoints().artifact_bucket
    store = ArtifactStore(engines)
    with httpx.Client(base_url=stack.url("registrar"), headers=bearer(f"full-{run}", "publisher"), timeout=120) as api:
        first = upload(api, model, os.urandom(2 * 1024 * 1024))  # over 1 MB stored (SeaweedFS compresses repeats)
        assert first.status_code == 201, first.text
        print(weed_shell(f"s3.bucket.quota -name={bucket} -op=set -sizeMB=1", "s3.bucket.quota.enforce -apply",
                         "s3.bucket.list", "collection.list"))
        refused, deadline = [], time.monotonic() + 90
        try:
            while True:  # the bucket's usage reaches the master with the volumes' heartbeats
                data = f"{run} {len(refused)} {time.monotonic()}".encode()
                answer = upload(api, model, data)
                if answer.status_code not in (200, 201, 202):
                    refused.append((answer, data))
                    break
                assert time.monotonic() < deadline, "the quota was never enforced"
                time.sleep(3)
                print(weed_shell("s3.bucket.quota.enforce -apply"))
        finally:  # space returns: the quota lifted, enforced again
            print(weed_shell(f"s3.bucket.quota -name={bucket} -op=remove", "s3.bucket.quota.enforce -apply"))
        answer, data = refused[0]
        print("refused:", answer.status_code, answer.headers, answer.text)
        log = services.log_path(LocalStack(), "registrar").read_text(errors="replace").splitlines()
        print("\n".join(line[:3000] for line in log if "artifact store" in line))
        # SeaweedFS refuses writes to a bucket over its quota with AccessDenied, which
        # a missing permission also gives: a 503 that names both, not a 507.
        assert answer.status_code == 503 and answer.headers.get("retry-after"), answer.text
        assert answer.json()["error"]["code"] == "artifact_store_read_only"
        digest = hashlib.sha256(data).hexdigest()
        assert not asyncio.run(store.exists(digest)), "a refused upload left an object"

        deadline = time.monotonic() + 120
        while (again := upload(api, model, data)).status_code not in (200, 201, 202):
            assert time.monotonic() < deadline, again.text
            time.sleep(2)
    events = asyncio.run(log_events_of(engines, [model]))
    stored = [e.payload.artifact.sha256 for e in events if e.type == "VersionRegistered"]
    assert stored.count(digest) == 1, "the refused upload was registered too"
    accepted = {e.command_id for e in events if e.closes_decision}
    asyncio.run(wait_for_outcomes(stack.url("projector"), accepted))
    asyncio.run(assert_whole_after_the_fault(engines, [model], accepted))
