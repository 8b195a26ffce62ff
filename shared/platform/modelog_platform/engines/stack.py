"""The engines together: up, status and down, idempotently.

up() launches every missing engine first and only then waits for them, so
their start-up times overlap instead of adding up.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from modelog_platform.engines.base import Engine
from modelog_platform.engines.kafka import Kafka
from modelog_platform.engines.layout import Layout, Report
from modelog_platform.engines.mlflow import MlflowTracking, available
from modelog_platform.engines.oidc import Oidc
from modelog_platform.engines.postgres import Postgres
from modelog_platform.engines.seaweedfs import SeaweedFS
from modelog_platform.settings import EngineEndpoints, LocalStack

# The MLflow tracking server last: modelog needs it only for MLflow users' sources.
ENGINES: tuple[Engine, ...] = (Kafka(), Postgres(), SeaweedFS(), Oidc()) + ((MlflowTracking(),) if available() else ())


@contextmanager
def _exclusive(lay: Layout) -> Iterator[None]:
    """One up()/down() at a time per home: concurrent callers (parallel test
    workers, say) would otherwise both see "not running" and start twice."""
    lay.run.mkdir(parents=True, exist_ok=True)
    with open(lay.run / "stack.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def up(endpoints: EngineEndpoints, stack: LocalStack, report: Report = print) -> dict[str, str]:
    """Install what is missing, start what is not running, wait until usable, provision.

    Returns {engine: "started" | "already running"}.
    """
    lay = Layout(endpoints, stack, report)
    started: dict[str, tuple[str, int]] = {}
    with _exclusive(lay):
        _up(lay, started)
    return {name: state for name, (state, _) in started.items()}


def _up(lay: Layout, started: dict[str, tuple[str, int]]) -> None:
    report = lay.report
    try:
        # Launch side by side: Kafka's storage format, initdb and a first
        # build are independent, and each takes seconds or more.
        with ThreadPoolExecutor(len(ENGINES)) as pool:
            futures = {e.name: pool.submit(e.ensure_started, lay) for e in ENGINES}
        errors = []
        for name, future in futures.items():
            try:
                started[name] = future.result()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
        for engine in ENGINES:
            state, pid = started[engine.name]
            t0 = time.monotonic()
            engine.wait_ready(lay, pid)
            engine.provision(lay)
            if state == "started":
                report(f"{engine.name}: ready (pid {pid}; waited {time.monotonic() - t0:.1f}s)")
    except BaseException:
        # Leave no half-started stack behind: stop what this call launched.
        for engine in ENGINES:
            if started.get(engine.name, ("",))[0] == "started":
                engine.stop(lay)
        raise


def service_env(endpoints: EngineEndpoints, stack: LocalStack, service: str) -> dict[str, str]:
    """What `service` needs to reach every engine as itself."""
    lay = Layout(endpoints, stack, lambda _: None)
    env: dict[str, str] = {}
    for engine in ENGINES:
        env.update(engine.service_env(lay, service))
    return env


def status(endpoints: EngineEndpoints, stack: LocalStack) -> dict[str, dict]:
    """Per engine: running, pid, port, rss_mb (whole process group)."""
    lay = Layout(endpoints, stack, lambda _: None)
    return {engine.name: engine.status(lay) for engine in ENGINES}


def down(stack: LocalStack, report: Report = print, endpoints: EngineEndpoints | None = None) -> None:
    """Stop every engine up() started (whole process groups) and remove the pid files."""
    lay = Layout(endpoints or EngineEndpoints(), stack, report)
    if not lay.run.exists():
        return  # never started: nothing to stop, and nothing to create
    with _exclusive(lay):
        # Reverse order: the S3 gateway and brokers first, the database last.
        for engine in reversed(ENGINES):
            if engine.stop(lay):
                report(f"{engine.name}: stopped")
