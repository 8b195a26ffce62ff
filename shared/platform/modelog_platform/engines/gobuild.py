"""Building an engine's binary from Go sources into the engines' cache.

SeaweedFS and the OIDC provider are built, not downloaded (only the Go module
proxy is reachable where modelog is tested). A build writes a temporary name
and gets the final one only once it is complete and runs, so an interrupted
build never leaves a binary that looks cached.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from modelog_platform.engines import procs
from modelog_platform.engines.layout import Layout, progress


def go_build(lay: Layout, engine: str, final: Path, args: list[str], source: Path, what: str,
             works: Callable[[Path], bool], cgo: bool = False) -> None:
    """`go build -o final args...` in `source`; progress and the build's output in <engine>-build.log."""
    lay.report(f"{engine}: building {what} with go…")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    log = lay.logs / f"{engine}-build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CGO_ENABLED": "1"} if cgo else None
    try:
        with open(log, "ab") as out, progress(lay.report, f"{engine}: go build {final.name}", 30) as tick:
            proc = subprocess.Popen(["go", "build", "-o", str(tmp), *args], cwd=source,
                                    stdout=out, stderr=subprocess.STDOUT, env=env)
            while proc.poll() is None:
                tick()
                time.sleep(1)
        if proc.returncode != 0 or not works(tmp):
            raise RuntimeError(f"{engine}: go build of {final.name} failed\n{procs.log_tail(log)}")
        tmp.rename(final)  # only a complete binary ever gets the final name
    finally:
        tmp.unlink(missing_ok=True)
    lay.report(f"{engine}: built {final}")
