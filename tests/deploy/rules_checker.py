"""prometheus-check (deploy/prometheus/check): Prometheus's own rule and
config parsers in a small Go program, built on first use into the engines'
cache the way the engines' Go builds are, and reused after.

Not promtool: `go install` of promtool compiles every service-discovery client
Prometheus ships (AWS, Azure, GCP, Kubernetes...), which on a fresh machine
takes longer than CI gives the whole suite. The checker's main.go says what it
checks and what it leaves out.
"""

import hashlib
import subprocess
import sys
from pathlib import Path

from modelog_platform.engines.gobuild import go_build
from modelog_platform.engines.layout import Layout, deploy_dir
from modelog_platform.settings import EngineEndpoints, LocalStack

NAME = "prometheus-check"


def _source() -> Path:
    return deploy_dir() / "prometheus" / "check"


def _source_digest() -> str:
    """Names the build: a changed checker or a new Prometheus pin is a new binary."""
    digest = hashlib.sha256()
    for name in ("main.go", "go.mod", "go.sum"):
        digest.update((_source() / name).read_bytes())
    return digest.hexdigest()[:12]


def _works(binary: Path) -> bool:
    try:
        done = subprocess.run([str(binary)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 2 and "usage:" in done.stderr


def _report(line: str) -> None:
    # To the terminal even while pytest captures output: a cold build takes minutes.
    print(line, file=sys.__stderr__, flush=True)


def prometheus_check() -> Path:
    """The cached checker for the current sources, built first if missing."""
    lay = Layout(EngineEndpoints(), LocalStack(), _report)
    binary = lay.cache / "bin" / f"{NAME}-{_source_digest()}" / NAME
    if not binary.exists():
        # A concurrent build of the same sources is harmless: each writes a
        # temporary name and only a complete binary gets the final one.
        go_build(lay, NAME, binary, ["."], _source(), f"{NAME} (first use, a few minutes)", _works)
    return binary
