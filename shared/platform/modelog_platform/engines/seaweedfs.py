"""SeaweedFS (master + volume + filer + S3 gateway in one `weed server`).

The binary is built once with the Go toolchain from deploy/seaweedfs (a
module pinning the upstream version, since upstream's replace directives
rule out `go install pkg@version`) and cached per pinned version.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import urllib3
from minio import Minio

from modelog_platform.adapters.s3 import ARTIFACT_PREFIX, ArtifactStore, s3_client
from modelog_platform.adapters.seal_store import SEALS_PREFIX
from modelog_platform.engines import procs
from modelog_platform.engines.base import Engine
from modelog_platform.engines.gobuild import go_build
from modelog_platform.engines.layout import Layout, deploy_dir, port_of, progress
from modelog_platform.engines.secrets import LocalSecrets
from modelog_platform.settings import LOCAL_S3_ADMIN, S3Credentials

PACKAGE = "github.com/seaweedfs/seaweedfs"

# The S3 identities each service runs as (the first is its own; the registrar
# also holds its reconciler's). Admin is for provisioning and tests only.
SERVICE_PRINCIPALS = {"registrar": ("registrar", "reconciler"), "projector": ("projector",),
                      "auditor": ("auditor",), "promoter": ("promoter",)}
PRINCIPALS = (LOCAL_S3_ADMIN, "registrar", "reconciler", "projector", "auditor", "promoter")
# Where the promoter keeps its partitions' snapshots (promoter.snapshot_store says the same).
SNAPSHOTS_PREFIX = "snapshots/"


def s3_identities(bucket: str, secret_of: Callable[[str], str]) -> dict:
    """SeaweedFS's -s3.config: one identity per principal, each allowed only
    what its service does, by an IAM policy document. Policies, not SeaweedFS's
    coarse actions (Read, Write, List...), because its Write also deletes and a
    policy tells s3:PutObject from s3:DeleteObject. No anonymous identity: a
    request without valid credentials is refused."""
    artifacts, seals, anything = (f"arn:aws:s3:::{bucket}/{ARTIFACT_PREFIX}*", f"arn:aws:s3:::{bucket}/{SEALS_PREFIX}*",
                                  "arn:aws:s3:::*/*")
    snapshots = f"arn:aws:s3:::{bucket}/{SNAPSHOTS_PREFIX}*"

    def listing(prefix: str) -> dict:
        return {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
                "Resource": [f"arn:aws:s3:::{bucket}"], "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}}}

    def allow(actions: list[str], resource: str) -> dict:
        return {"Effect": "Allow", "Action": actions, "Resource": [resource]}

    statements = {
        # Stores uploads; reads them back to stream downloads, and reads the
        # object a by-reference registration names, wherever that is.
        "registrar": [allow(["s3:PutObject"], artifacts), allow(["s3:GetObject"], anything)],
        # Finds orphaned artifacts and removes them with every version.
        "reconciler": [listing(ARTIFACT_PREFIX), allow(["s3:DeleteObject", "s3:DeleteObjectVersion"], artifacts)],
        # Presigns download URLs: the URL carries this identity's right to read.
        "projector": [allow(["s3:GetObject"], artifacts)],
        # Writes seals under Object Lock retention and reads them, every version.
        "auditor": [allow(["s3:PutObject", "s3:PutObjectRetention", "s3:GetObject", "s3:GetObjectVersion"], seals),
                    listing(SEALS_PREFIX)],
        # Writes its partitions' snapshots, reads them back on restore, and
        # removes all but the newest few, every version: nothing outside them.
        "promoter": [allow(["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:DeleteObjectVersion"], snapshots),
                     listing(SNAPSHOTS_PREFIX)],
    }
    identities = [{"name": LOCAL_S3_ADMIN, "actions": ["Admin"],
                   "credentials": [{"accessKey": LOCAL_S3_ADMIN, "secretKey": secret_of(LOCAL_S3_ADMIN)}]}]
    identities += [{"name": who, "policyNames": [f"modelog-{who}"],
                    "credentials": [{"accessKey": who, "secretKey": secret_of(who)}]} for who in statements]
    policies = [{"name": f"modelog-{who}", "document": {"Version": "2012-10-17", "Statement": stmts}}
                for who, stmts in statements.items()]
    return {"identities": identities, "policies": policies}


def pinned_version() -> str:
    text = (deploy_dir() / "seaweedfs" / "go.mod").read_text()
    match = re.search(rf"^\s*{re.escape(PACKAGE)}\s+(\S+)", text, re.M)
    if not match:
        raise RuntimeError(f"{PACKAGE} is not required in deploy/seaweedfs/go.mod")
    return match.group(1)


def _builds_in_flight(cache: Path) -> list[int]:
    """Other `go build` runs writing into our cache (a concurrent `up`, say)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and entry != str(os.getpid()):
            cmd = procs.cmdline(int(entry))
            if "go build" in cmd and str(cache) in cmd:
                pids.append(int(entry))
    return pids


def _works(binary: Path) -> bool:
    try:
        return subprocess.run([str(binary), "version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class SeaweedFS(Engine):
    name = "seaweedfs"
    ready_timeout = 90.0
    # `weed server` stops its volume server before the filer, whose last
    # metadata-log flush then retries for ~15 s before giving up.
    stop_timeout = 30.0

    def port(self, lay: Layout) -> int:
        return port_of(lay.endpoints.s3_endpoint)

    def binary(self, lay: Layout) -> Path:
        return lay.cache / "seaweedfs" / pinned_version() / "weed"

    def install(self, lay: Layout) -> None:
        final = self.binary(lay)
        if final.exists():
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        cache = lay.cache / "seaweedfs"
        # Someone is already building into the cache: wait for it, then adopt
        # its output (named weed-build by convention) rather than build twice.
        with progress(lay.report, "seaweedfs: waiting for a build in progress") as tick:
            while _builds_in_flight(cache):
                tick()
                time.sleep(2)
        adopted = cache / "weed-build"
        if adopted.exists() and _works(adopted):
            adopted.rename(final)
            lay.report(f"seaweedfs: adopted finished build as {final}")
            return
        self._build(lay, final)

    def _build(self, lay: Layout, final: Path) -> None:
        go_build(lay, self.name, final, [f"{PACKAGE}/weed"], deploy_dir() / "seaweedfs",
                 "weed (first time, several minutes)", _works)

    def _s3_config(self, lay: Layout) -> Path:
        secrets = LocalSecrets(lay.home)
        config = s3_identities(lay.endpoints.artifact_bucket, lambda who: secrets.password("seaweedfs", who))
        path = lay.data(self.name) / "s3.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        # It holds every secret: private from its first byte, not chmod-ed after.
        path.unlink(missing_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            json.dump(config, out, indent=2)
        return path

    def service_env(self, lay: Layout, service: str) -> dict[str, str]:
        if service not in SERVICE_PRINCIPALS:
            return {}
        secrets = LocalSecrets(lay.home)
        env = {}
        for principal in SERVICE_PRINCIPALS[service]:
            prefix = "MODELOG_S3" if principal == service else f"MODELOG_S3_{principal.upper()}"
            env[f"{prefix}_ACCESS_KEY"] = principal
            env[f"{prefix}_SECRET_KEY_FILE"] = str(secrets.password_file("seaweedfs", principal))
            env[f"{prefix}_SECRET_KEY"] = ""  # blanks a caller's inline secret, which would win
        return env

    def launch(self, lay: Layout) -> int:
        base, st = lay.data(self.name), lay.stack
        data = base / "data"
        data.mkdir(parents=True, exist_ok=True)
        argv = [
            # Global flag: glog otherwise writes its files to /tmp; keep them in our log.
            str(self.binary(lay)), "-logtostderr", "server",
            f"-dir={data}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={st.seaweedfs_master_port}", f"-master.port.grpc={st.seaweedfs_master_grpc_port}",
            "-master.volumeSizeLimitMB=64",
            "-master.telemetry=false",  # on by default: no phoning home from dev and CI
            # A lone master re-elects itself after a restart only when the election
            # times out (10 s by default, ~20 s seen): one node needs no patience.
            "-master.electionTimeout=1s",
            f"-volume.port={st.seaweedfs_volume_port}", f"-volume.port.grpc={st.seaweedfs_volume_grpc_port}",
            "-volume.max=0",  # 0: as many volumes as the disk's free space allows
            # Default 10 s of draining heartbeats before a stop: pointless on one node.
            "-volume.preStopSeconds=0",
            "-filer", f"-filer.port={st.seaweedfs_filer_port}", f"-filer.port.grpc={st.seaweedfs_filer_grpc_port}",
            f"-filer.localSocket={base / 'filer.sock'}",
            "-s3", f"-s3.port={self.port(lay)}", f"-s3.port.grpc={st.seaweedfs_s3_grpc_port}",
            f"-s3.config={self._s3_config(lay)}",
            # The embedded IAM API would let S3 callers manage identities on the
            # data port; ours are fixed in s3.json.
            "-s3.iam=false",
            f"-s3.localSocket={base / 's3.sock'}",
            # Iceberg (8181) and Lance (9101) catalogs listen by default on fixed
            # ports, so two stacks on one machine would collide: we need neither.
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            # Behave like AWS S3: a missing bucket is an error, not created on upload.
            "-s3.autoCreateBucket=false",
        ]
        return procs.start_detached(argv, lay.log_file(self.name), lay.pid_file(self.name), cwd=base)

    def grpc_sockets(self, lay: Layout) -> list[Path]:
        # `weed server` hard-codes these unix sockets in /tmp, named by gRPC
        # port, and may leave them behind on shutdown.
        st = lay.stack
        ports = {"master": st.seaweedfs_master_grpc_port, "volume": st.seaweedfs_volume_grpc_port,
                 "filer": st.seaweedfs_filer_grpc_port, "s3": st.seaweedfs_s3_grpc_port}
        return [Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock") for name, port in ports.items()]

    def stop(self, lay: Layout) -> bool:
        stopped = super().stop(lay)
        for sock in self.grpc_sockets(lay):
            sock.unlink(missing_ok=True)
        return stopped

    def client(self, lay: Layout) -> Minio:
        """The admin's client: only provisioning and readiness use it."""
        admin = S3Credentials(LOCAL_S3_ADMIN, LocalSecrets(lay.home).password("seaweedfs", LOCAL_S3_ADMIN))
        # Short timeouts, no retry storm: a probe that hangs would stall up().
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=2, read=10), retries=urllib3.Retry(total=1, backoff_factor=0.2)
        )
        return s3_client(lay.endpoints, admin, http_client=http)

    def ready(self, lay: Layout) -> bool:
        if not procs.port_open(self.port(lay)):
            return False
        self.client(lay).list_buckets()
        return True

    def provision(self, lay: Layout) -> None:
        client, bucket = self.client(lay), lay.endpoints.artifact_bucket
        ArtifactStore(lay.endpoints, client).ensure_bucket()
        # Usable means writable: a fresh master defers its first volume
        # allocation by several seconds, and that wait belongs to up(), not to
        # the first upload of whoever comes next.
        probe = ".modelog-up-probe"
        client.put_object(bucket, probe, io.BytesIO(b"ok"), 2)
        client.remove_object(bucket, probe)
