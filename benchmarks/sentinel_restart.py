"""The sentinel's restart, against a running stack (`make up`):

    uv run python benchmarks/sentinel_restart.py [ROUNDS] [--whole]

Stops the sentinel and starts it again ROUNDS times (default 3), each time
timing its start to `/readyz` ready, and prints where its fold started (its
book or the whole log, decision 0015), the events and models it holds, its
resident memory and the book's size. `--whole` removes the book before the
first round, so that round folds the whole log: the figure before the book
existed, in the same run.
"""

import os
import sys
import time

import httpx

from modelog_platform import services
from modelog_platform.settings import LocalStack, ServicePorts


def resident_mb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) // 1024


def main(rounds: int, whole: bool) -> None:
    local, ports = LocalStack(), ServicePorts()
    book = local.home / "sentinel" / "book"
    for round_ in range(rounds):
        if whole and round_ == 0 and book.exists():
            book.unlink()
        services.stop("sentinel", local)
        started = time.monotonic()
        services.start("sentinel", local)
        services.wait_ready("sentinel", local, ports, timeout_s=1800)
        ready_s = time.monotonic() - started
        status = httpx.get(f"{ports.url('sentinel')}/v1/status", timeout=10).json()
        pid = services.running_pid(local, "sentinel")
        assert pid is not None, "the sentinel is ready, so it runs"
        size_mb = book.stat().st_size / 1e6 if book.exists() else 0.0
        print(f"ready in {ready_s:.1f} s from {status['started_from']}: {status['events_folded']:,} events, "
              f"{status['models']:,} models, resident {resident_mb(pid)} MB, book {size_mb:.1f} MB, "
              f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]) if args else 3, "--whole" in sys.argv)
