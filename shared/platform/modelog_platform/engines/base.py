"""What every engine module provides, and the start-if-not-running logic they share."""

from __future__ import annotations

import asyncio
import concurrent.futures
import signal
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import TypeVar

from modelog_platform.engines import procs
from modelog_platform.engines.layout import Layout, wait_until

T = TypeVar("T")


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine from sync code, even when the caller is inside an event loop.

    up() is synchronous but is also called from async tests and fixtures, where
    asyncio.run() would refuse to nest: then run it on a thread of its own.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())  # type: ignore[arg-type]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()  # type: ignore[arg-type]


class Engine(ABC):
    name: str
    stop_signal: int = signal.SIGTERM
    ready_timeout: float = 90.0
    stop_timeout: float = 20.0  # graceful stop, then SIGKILL of the group

    @abstractmethod
    def port(self, lay: Layout) -> int: ...

    @abstractmethod
    def install(self, lay: Layout) -> None:
        """Make the binaries/jars available (cached outside the checkout)."""

    @abstractmethod
    def launch(self, lay: Layout) -> int:
        """Prepare the data directory if new, start the process, return its pid."""

    @abstractmethod
    def ready(self, lay: Layout) -> bool:
        """One readiness probe through a real client; may raise."""

    @abstractmethod
    def provision(self, lay: Layout) -> None:
        """Create topics / role+database / bucket if missing."""

    def service_env(self, lay: Layout, service: str) -> dict[str, str]:
        """The MODELOG_* variables that give `service` its own identity on this
        engine (credentials, CA file); none where the engine has no identities."""
        return {}

    # -- shared behaviour ------------------------------------------------------

    def marker(self, lay: Layout) -> str:
        # Every engine's command line names its data directory.
        return str(lay.data(self.name))

    def running_pid(self, lay: Layout) -> int | None:
        return procs.running_pid(lay.pid_file(self.name), self.marker(lay))

    def ensure_started(self, lay: Layout) -> tuple[str, int]:
        """Start the engine unless it runs; returns ("started"|"already running", pid)."""
        pid = self.running_pid(lay)
        if pid:
            return "already running", pid
        lay.pid_file(self.name).unlink(missing_ok=True)
        port = self.port(lay)
        if procs.port_open(port):
            raise RuntimeError(
                f"{self.name}: port {port} is taken by a process this stack did not start"
            )
        self.install(lay)
        lay.report(f"{self.name}: starting on port {port}")
        return "started", self.launch(lay)

    def wait_ready(self, lay: Layout, pid: int) -> None:
        wait_until(
            lambda: self.ready(lay),
            self.ready_timeout,
            self.name,
            alive=lambda: procs.is_alive(pid),
            log=lay.log_file(self.name),
        )

    def stop(self, lay: Layout) -> bool:
        """Stop the engine's whole process group; True if something was running."""
        pid_file = lay.pid_file(self.name)
        pid = procs.read_pid(pid_file)
        stopped = False
        if pid and procs.group_members(pid):
            procs.stop_group(pid, self.stop_signal, self.stop_timeout)
            stopped = True
        pid_file.unlink(missing_ok=True)
        return stopped

    def status(self, lay: Layout) -> dict:
        pid = self.running_pid(lay)
        return {
            "running": pid is not None,
            "pid": pid,
            "port": self.port(lay),
            "rss_mb": procs.rss_mb(pid) if pid else 0.0,
        }
