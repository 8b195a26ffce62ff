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
import uuid
from pathlib import Path

import urllib3
from minio import Minio

from modelog_platform.adapters.s3 import ArtifactStore
from modelog_platform.engines import procs
from modelog_platform.engines.base import Engine
from modelog_platform.engines.layout import Layout, deploy_dir, port_of, progress

PACKAGE = "github.com/seaweedfs/seaweedfs"


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
        lay.report("seaweedfs: building weed with go (first time, several minutes)…")
        tmp = final.with_name(f"weed.tmp-{uuid.uuid4().hex[:8]}")
        log = lay.logs / "seaweedfs-build.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(log, "ab") as out, progress(lay.report, "seaweedfs: go build", 30) as tick:
                proc = subprocess.Popen(
                    ["go", "build", "-o", str(tmp), f"{PACKAGE}/weed"],
                    cwd=deploy_dir() / "seaweedfs", stdout=out, stderr=subprocess.STDOUT,
                )
                while proc.poll() is None:
                    tick()
                    time.sleep(1)
            if proc.returncode != 0:
                raise RuntimeError(f"seaweedfs: go build failed\n{procs.log_tail(log)}")
            tmp.rename(final)  # only a complete binary ever gets the final name
        finally:
            tmp.unlink(missing_ok=True)
        lay.report(f"seaweedfs: built {final}")

    def _s3_config(self, lay: Layout) -> Path:
        ep = lay.endpoints
        config = {
            "identities": [
                {
                    "name": ep.s3_access_key,
                    "credentials": [{"accessKey": ep.s3_access_key, "secretKey": ep.s3_secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        path = lay.data(self.name) / "s3.json"
        path.write_text(json.dumps(config, indent=2))
        path.chmod(0o600)
        return path

    def launch(self, lay: Layout) -> int:
        base, st = lay.data(self.name), lay.stack
        data = base / "data"
        data.mkdir(parents=True, exist_ok=True)
        argv = [
            # Global flag: glog otherwise writes its files to /tmp; keep them in our log.
            str(self.binary(lay)), "-logtostderr", "server",
            f"-dir={data}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={st.seaweedfs_master_port}",
            "-master.volumeSizeLimitMB=64",
            "-master.telemetry=false",  # on by default: no phoning home from dev and CI
            # A lone master re-elects itself after a restart only when the election
            # times out (10 s by default, ~20 s seen): one node needs no patience.
            "-master.electionTimeout=1s",
            f"-volume.port={st.seaweedfs_volume_port}",
            "-volume.max=0",  # 0: as many volumes as the disk's free space allows
            # Default 10 s of draining heartbeats before a stop: pointless on one node.
            "-volume.preStopSeconds=0",
            "-filer", f"-filer.port={st.seaweedfs_filer_port}",
            f"-filer.localSocket={base / 'filer.sock'}",
            "-s3", f"-s3.port={self.port(lay)}", f"-s3.config={self._s3_config(lay)}",
            f"-s3.localSocket={base / 's3.sock'}",
            # Iceberg (8181) and Lance (9101) catalogs listen by default on fixed
            # ports, so two stacks on one machine would collide: we need neither.
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            # Behave like AWS S3: a missing bucket is an error, not created on upload.
            "-s3.autoCreateBucket=false",
        ]
        return procs.start_detached(argv, lay.log_file(self.name), lay.pid_file(self.name), cwd=base)

    def grpc_sockets(self, lay: Layout) -> list[Path]:
        # `weed server` hard-codes these unix sockets in /tmp (gRPC port =
        # HTTP port + 10000) and may leave them behind on shutdown.
        st = lay.stack
        ports = {"master": st.seaweedfs_master_port, "volume": st.seaweedfs_volume_port,
                 "filer": st.seaweedfs_filer_port, "s3": self.port(lay)}
        return [Path(f"/tmp/seaweedfs-{name}-grpc-{port + 10000}.sock") for name, port in ports.items()]

    def stop(self, lay: Layout) -> bool:
        stopped = super().stop(lay)
        for sock in self.grpc_sockets(lay):
            sock.unlink(missing_ok=True)
        return stopped

    def client(self, lay: Layout) -> Minio:
        ep = lay.endpoints
        # Short timeouts, no retry storm: a probe that hangs would stall up().
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=2, read=10), retries=urllib3.Retry(total=1, backoff_factor=0.2)
        )
        return Minio(ep.s3_endpoint, access_key=ep.s3_access_key, secret_key=ep.s3_secret_key,
                     secure=ep.s3_secure, region=ep.s3_region, http_client=http)

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
