"""Detached engine processes: start, pid files, liveness, memory, stop.

Each engine runs in a session (process group) of its own, so stopping it
stops its children too (postgres backends, the JVM's helpers) and nothing is
left behind; a pid file under home/run records the group leader.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def start_detached(
    argv: list[str],
    log_path: Path,
    pid_path: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    user: str | None = None,
) -> int:
    """Start argv in a new session, output appended to log_path; record the pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            # Popen switches uid/gid itself (no runuser wrapper in between), so
            # the recorded pid is the engine's own.
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )
    pid_path.write_text(f"{proc.pid}\n")
    return proc.pid


def read_pid(pid_path: Path) -> int | None:
    try:
        return int(pid_path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def is_alive(pid: int | None) -> bool:
    """True for a live (not zombie) process; reaps it if it is our own dead child."""
    if not pid:
        return False
    fields = _stat_fields(pid)
    if fields is None:
        return False
    if fields[0] == "Z":
        _reap(pid)
        return False
    return True


# How our own children ended, pid -> wait status, kept for the error message
# of whoever notices the death later than the reaping.
_ended: dict[int, int] = {}


def _reap(pid: int) -> None:
    try:
        reaped, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return
    if reaped == pid:
        _ended[pid] = status


def how_it_ended(pid: int | None) -> str:
    """'exit code N' or 'killed by SIGX' for a child we reaped; else 'unknown'."""
    status = _ended.get(pid) if pid else None
    if status is None:
        return "unknown (not our child, or not reaped yet)"
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


def running_pid(pid_path: Path, marker: str) -> int | None:
    """The recorded pid if it is alive and still ours (its cmdline holds marker).

    The marker (a path under home) guards against a recycled pid.
    """
    pid = read_pid(pid_path)
    if is_alive(pid) and marker in cmdline(pid):  # type: ignore[arg-type]
        return pid
    return None


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is pgid."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        # fields: [state, ppid, pgrp, ...]
        if fields and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def rss_mb(pid: int) -> float:
    """Resident memory of a process and the rest of its process group, in MB."""
    total_kb = 0
    for member in group_members(pid) or [pid]:
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return round(total_kb / 1024, 1)


def stop_group(pid: int, first_signal: int = signal.SIGTERM, timeout: float = 20.0) -> None:
    """Ask the leader to stop, wait for the whole group, then SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, first_signal)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not group_members(pid):
            _await_gone(pid)
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while group_members(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    _await_gone(pid)


def _await_gone(pid: int, timeout: float = 5.0) -> None:
    """Reap the leader until its /proc entry is gone.

    A multi-threaded leader shows as a zombie while its other threads are
    still exiting, and waitpid() cannot reap it yet: keep trying briefly, or
    our own child would linger as a zombie. (Not our child: init reaps it.)
    """
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.02)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
