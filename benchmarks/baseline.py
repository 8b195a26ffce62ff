"""Figures before and after in one run: the same code path as it was at an
earlier commit, run in a subprocess from a git worktree of that commit (its
packages first on the path, this checkout's environment for everything else).

The worktree is made once under the system's temporary directory and kept.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The last commit before replays were made faster: the "before" of their figures.
BEFORE_FASTER_REPLAYS = "68b8923"
# The last commit before replays checked signatures at the ends of chain runs
# rather than on every event (decision 0013): the "before" of today's figures.
BEFORE_RUN_PROOFS = "0c6bcfb"
PACKAGES = ("shared/contract", "shared/platform", "shared/client", "services/projector", "services/promoter")


def worktree(commit: str) -> Path:
    path = Path(tempfile.gettempdir()) / f"modelog-at-{commit}"
    if not path.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit],
                       check=True, capture_output=True)
    return path


def env_at(commit: str, **extra: str) -> dict[str, str]:
    """This process's environment, with `commit`'s packages imported first."""
    tree = worktree(commit)
    return {**os.environ, **extra,
            "PYTHONPATH": os.pathsep.join([*(str(tree / p) for p in PACKAGES), os.environ.get("PYTHONPATH", "")])}


def python_at(commit: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """`python *args` with `commit`'s code; raises when it fails."""
    return subprocess.run([sys.executable, *args], env=env_at(commit, **extra), check=True,
                          capture_output=True, text=True)


def load() -> str:
    return f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores"
