"""The five services as local processes: started, checked ready, stopped.

Each runs as `python -m <service>` in a process group of its own (through the
same process helpers as the engines), with a pid file under <home>/run and its
log under <home>/logs. A second instance of a service is named `<service>-<n>`
(`projector-2`): the same module and consumer group, its own pid and log files,
and its own HTTP port given to `start` in the service's port variable.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from modelog_platform import engines
from modelog_platform.engines import procs
from modelog_platform.settings import EngineEndpoints, LocalStack, ServicePorts

SERVICES = ("projector", "auditor", "promoter", "registrar", "sentinel")  # start order: readers first
MIGRATED = ("projector", "auditor")  # the services with tables of their own


def service_of(instance: str) -> str:
    """`projector-2` runs the projector; `projector` is its own first instance."""
    return instance.split("-")[0]


def _pid_file(stack: LocalStack, instance: str) -> Path:
    return stack.home.resolve() / "run" / f"{instance}.pid"


def log_path(stack: LocalStack, instance: str) -> Path:
    return stack.home.resolve() / "logs" / f"{instance}.log"


def running_pid(stack: LocalStack, instance: str) -> int | None:
    return procs.running_pid(_pid_file(stack, instance), f"-m {service_of(instance)}")


def start(instance: str, stack: LocalStack, env: dict[str, str] | None = None) -> int:
    """Start one service instance unless it runs already, its schema migrated
    first where it has one; returns its pid."""
    if pid := running_pid(stack, instance):
        return pid
    if service_of(instance) in MIGRATED:
        migrate(service_of(instance), stack)
    return procs.start_detached(
        [sys.executable, "-m", service_of(instance)], log_path(stack, instance), _pid_file(stack, instance),
        # faulthandler: a crash in native code still leaves a traceback in the log.
        # The service's own engine identities override whatever the caller's
        # environment holds: a test or an operator shell may carry an admin's.
        env={**identity_env(stack), **os.environ, **engines.service_env(EngineEndpoints(), stack, service_of(instance)),
             **instance_env(instance), "PYTHONFAULTHANDLER": "1", **(env or {})})


def instance_env(instance: str) -> dict[str, str]:
    """What names one instance apart from its siblings: a promoter's static
    group membership, so a restarted one takes its partitions back at once."""
    return {"MODELOG_PROMOTER_INSTANCE_ID": instance} if service_of(instance) == "promoter" else {}


def migrate(service: str, stack: LocalStack) -> None:
    """`python -m <service> migrate`, as the database's owner role: the
    serving roles may not change the schema, and refuse a schema behind them."""
    from modelog_platform.engines.layout import Layout
    from modelog_platform.engines.postgres import OWNER_ROLE, Postgres

    lay = Layout(EngineEndpoints(), stack, lambda _: None)
    done = subprocess.run([sys.executable, "-m", service, "migrate"], capture_output=True, text=True,
                          env={**os.environ, **Postgres().role_env(lay, OWNER_ROLE)})
    if done.returncode != 0:
        raise RuntimeError(f"{service}: migrating its schema failed\n{done.stderr[-4000:]}")


def identity_env(stack: LocalStack) -> dict[str, str]:
    """The local stack trusts its dev issuer, unless an issuer is configured."""
    if os.environ.get("MODELOG_IDENTITY_PUBLIC_KEY_FILE") or os.environ.get("MODELOG_IDENTITY_JWKS_URL"):
        return {}
    from modelog_platform.identity.dev import DevIssuer
    return DevIssuer.local(stack).service_env()


def wait_ready(instance: str, stack: LocalStack, ports: ServicePorts, timeout_s: float = 90,
               report: Callable[[str], None] | None = None) -> None:
    """Until /readyz says ready (at the instance's port in `ports`). A service
    that reports `progress` (the promoter restoring a long log) gets more time
    while that progress moves, and `report` is told how far it is every few
    seconds."""
    url = ports.url(service_of(instance)) + "/readyz"
    deadline = time.monotonic() + timeout_s
    last, progress, reported_at = "no answer", None, time.monotonic()
    # Liveness of the very process we started, by pid: a fresh process does not
    # always show its command line yet, so the pid file's marker check would
    # take a starting service for a dead one.
    pid = procs.read_pid(_pid_file(stack, instance))
    while time.monotonic() < deadline:
        if not procs.is_alive(pid):
            raise RuntimeError(f"{instance} (pid {pid}) ended while starting: {procs.how_it_ended(pid)}\n"
                               f"{procs.log_tail(log_path(stack, instance))}")
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return
            last = response.text
            now_at = response.json().get("checks", {}).get("progress")
            if now_at and now_at != progress:
                progress, deadline = now_at, max(deadline, time.monotonic() + 30)
                if report and time.monotonic() - reported_at >= 5:
                    report(f"{instance}: {progress}")
                    reported_at = time.monotonic()
        except (httpx.HTTPError, ValueError) as error:
            last = str(error)
        time.sleep(0.25)
    raise TimeoutError(f"{instance} not ready at {url} after {timeout_s:.0f}s: {last}")


def up(stack: LocalStack, ports: ServicePorts, report: Callable[[str], None] = print) -> dict[str, str]:
    urls = {}
    for service in SERVICES:
        already = running_pid(stack, service)
        start(service, stack)
        wait_ready(service, stack, ports, report=report)
        urls[service] = ports.url(service)
        report(f"{service}: {'already running' if already else 'started'} at {urls[service]}")
    return urls


def status(stack: LocalStack, ports: ServicePorts, timeout_s: float = 1.0) -> dict[str, dict]:
    """Per service: running (by its pid file), pid, port, URL, and ready (its
    /readyz answers 200; never asked of a service that is not running)."""
    answer = {}
    for service in SERVICES:
        pid, url = running_pid(stack, service), ports.url(service)
        answer[service] = {"running": pid is not None, "pid": pid, "port": getattr(ports, f"{service}_port"),
                           "url": url, "ready": pid is not None and is_ready(url, timeout_s)}
    return answer


def is_ready(url: str, timeout_s: float) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def stop(instance: str, stack: LocalStack) -> None:
    if pid := running_pid(stack, instance):
        procs.stop_group(pid, signal.SIGTERM, timeout=10)
    _pid_file(stack, instance).unlink(missing_ok=True)


def kill(instance: str, stack: LocalStack) -> None:
    """SIGKILL, no goodbye: what a crash looks like to the rest of the system."""
    if pid := running_pid(stack, instance):
        procs.stop_group(pid, signal.SIGKILL, timeout=5)
    _pid_file(stack, instance).unlink(missing_ok=True)


def down(stack: LocalStack, report: Callable[[str], None] = print) -> None:
    for service in reversed(SERVICES):
        if running_pid(stack, service):
            stop(service, stack)
            report(f"{service}: stopped")
