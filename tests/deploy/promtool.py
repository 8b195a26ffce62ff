"""promtool, Prometheus's own checker, built with Go on first use into the
cache (`go install`, as the engines' Go builds are, since only the Go module
proxy is reachable here) and reused after."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from modelog_platform.settings import LocalStack

VERSION = "v0.316.0"  # Prometheus 3.x's Go module version
PACKAGE = f"github.com/prometheus/prometheus/cmd/promtool@{VERSION}"


def promtool() -> Path:
    """The cached promtool of VERSION, built first if missing."""
    bin_dir = LocalStack().cache_dir / "bin" / f"promtool-{VERSION}"
    binary = bin_dir / "promtool"
    if binary.exists():
        return binary
    if shutil.which("go") is None:
        raise RuntimeError("promtool is built with Go: put `go` on the PATH")
    # To the terminal even while pytest captures output: the build takes minutes.
    print(f"promtool: building {PACKAGE} with go install (first use; 31 minutes on a busy 2-core machine)…",
          file=sys.__stderr__, flush=True)
    bin_dir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["go", "install", PACKAGE], env={**os.environ, "GOBIN": str(bin_dir)},
                          capture_output=True, text=True)
    if done.returncode != 0 or not binary.exists():
        raise RuntimeError(f"go install {PACKAGE} failed:\n{done.stderr[-4000:]}")
    print(f"promtool: built {binary}", file=sys.__stderr__, flush=True)
    return binary
