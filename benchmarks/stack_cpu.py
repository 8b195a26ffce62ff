"""CPU seconds each process of a local stack spent, read from /proc: on a
machine others load too, a throughput figure moves with their work, while the
CPU the stack spends per command mostly does not, so before/after compares.

A process's figure is its own user+system time, plus its children's (live
ones read directly, reaped ones as the kernel adds them to the parent): a
PostgreSQL server's backends, a broker's helpers. Linux only.
"""

import os
import time
from collections import defaultdict
from pathlib import Path

from modelog_platform.settings import LocalStack

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, int, int]:
    """(parent pid, own ticks, own + reaped children's ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return int(fields[1]), utime + stime, utime + stime + cutime + cstime


def stack_cpu_s(stack: LocalStack | None = None) -> dict[str, float]:
    """CPU seconds so far of each process with a pid file under the stack's home."""
    run = (stack or LocalStack()).home / "run"
    children: dict[int, int] = defaultdict(int)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent, own, _ = _stat(int(entry.name))
            except (OSError, IndexError, ValueError):  # gone meanwhile
                continue
            children[parent] += own
    spent = {}
    for pid_file in sorted(run.glob("*.pid")):
        try:
            pid = int(pid_file.read_text().split()[0])
            _, _, total = _stat(pid)
        except (OSError, IndexError, ValueError):  # not running
            continue
        spent[pid_file.stem] = (total + children[pid]) / TICKS_PER_S
    return spent


def spent_since(before: dict[str, float], stack: LocalStack | None = None) -> dict[str, float]:
    now = stack_cpu_s(stack)
    return {name: now[name] - before.get(name, 0.0) for name in now}


def wait_until_idle(names: tuple[str, ...] = ("projector", "auditor"), busy_below: float = 0.05,
                    quiet_s: float = 2.0, stack: LocalStack | None = None) -> None:
    """Until each of `names` spent under `busy_below` of a core for `quiet_s`
    seconds: the read side has caught up with what was decided."""
    last = stack_cpu_s(stack)
    while True:
        time.sleep(quiet_s)
        now = stack_cpu_s(stack)
        if all(now.get(name, 0.0) - last.get(name, 0.0) < busy_below * quiet_s for name in names):
            return
        last = now


def per_process(spent: dict[str, float], commands: int) -> str:
    """`name seconds` for every process that spent any, and the stack's CPU ms per command."""
    busy = {name: s for name, s in sorted(spent.items(), key=lambda item: -item[1]) if s >= 0.05}
    total = sum(busy.values())
    return (", ".join(f"{name} {s:.1f} s" for name, s in busy.items())
            + f"; {total:.1f} s in all, {1000 * total / commands:.2f} ms per command")
