"""Where everything lives: ports parsed from the endpoints, paths under home.

One `Layout` is handed to every engine module, so none of them re-derives a
port or a directory on its own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import modelog_platform
from modelog_platform.engines.procs import log_tail
from modelog_platform.settings import EngineEndpoints, LocalStack

Report = Callable[[str], None]


def port_of(address: str) -> int:
    """The port of "host:port", "scheme://user:pw@host:port/db" or "http://host:port"."""
    if "://" not in address:
        address = "//" + address
    port = urlsplit(address).port
    if port is None:
        raise ValueError(f"no port in {address!r}")
    return port


def deploy_dir() -> Path:
    """The repository's deploy/ (pom, go.mod); the package is installed editable."""
    env = os.environ.get("MODELOG_DEPLOY_DIR")
    if env:
        return Path(env).resolve()
    return Path(modelog_platform.__file__).resolve().parents[3] / "deploy"


@dataclass(frozen=True)
class Layout:
    endpoints: EngineEndpoints
    stack: LocalStack
    report: Report

    @property
    def home(self) -> Path:
        # Resolved once here: pid checks match on absolute paths in cmdlines.
        return self.stack.home.expanduser().resolve()

    @property
    def cache(self) -> Path:
        return self.stack.cache_dir.expanduser().resolve()

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def run(self) -> Path:
        return self.home / "run"

    def data(self, engine: str) -> Path:
        return self.home / engine

    def pid_file(self, engine: str) -> Path:
        return self.run / f"{engine}.pid"

    def log_file(self, engine: str) -> Path:
        return self.logs / f"{engine}.log"


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    alive: Callable[[], bool] | None = None,
    log: Path | None = None,
    interval: float = 0.25,
) -> None:
    """Poll check() until true; fail early (with the log tail) if the process died."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:  # not ready yet: connection refused, auth not set up, ...
            pass
        if alive is not None and not alive():
            tail = log_tail(log) if log else ""
            raise RuntimeError(f"{what}: the process exited while starting\n{tail}")
        if time.monotonic() > deadline:
            tail = log_tail(log) if log else ""
            raise TimeoutError(f"{what}: not ready after {timeout:.0f}s\n{tail}")
        time.sleep(interval)


@contextmanager
def progress(report: Report, what: str, every: float = 30.0) -> Iterator[Callable[[], None]]:
    """Yields a tick() that reports "still <what> (Ns)" at most every `every` seconds."""
    start = time.monotonic()
    last = [start]

    def tick() -> None:
        now = time.monotonic()
        if now - last[0] >= every:
            last[0] = now
            report(f"{what}… still working ({now - start:.0f}s)")

    yield tick
