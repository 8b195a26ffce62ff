"""The test stack: real engines and real service processes, started through the
same code as `modelog up`, on ports of their own so a running demo stack is
left alone. Data lives in a fresh temporary home for every test session."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Set before any settings object is built, so every process and every
# in-process client of the session agrees on where the test stack is.
# All below Linux's ephemeral range (32768+), where any outgoing connection
# could hold one; SeaweedFS's gRPC ports are named too, for the same reason.
# MODELOG_TEST_PORT_SHIFT moves them all, for two test runs on one machine;
# under pytest-xdist each worker runs a stack of its own, 500 ports further on
# per worker. The final shift is put back in the environment for the tests and
# processes that read it there.
WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
SHIFT = int(os.environ.get("MODELOG_TEST_PORT_SHIFT", "0")) + 500 * WORKER
os.environ["MODELOG_TEST_PORT_SHIFT"] = str(SHIFT)


def port(number: int) -> int:
    return number + SHIFT


TEST_ENV = {
    "MODELOG_KAFKA_BOOTSTRAP": f"127.0.0.1:{port(21092)}",
    "MODELOG_KAFKA_CONTROLLER_PORT": str(port(21093)),
    "MODELOG_POSTGRES_DSN": f"postgresql://127.0.0.1:{port(21432)}/modelog",
    "MODELOG_S3_ENDPOINT": f"127.0.0.1:{port(21333)}",
    "MODELOG_SEAWEEDFS_MASTER_PORT": str(port(21334)),
    "MODELOG_SEAWEEDFS_VOLUME_PORT": str(port(21335)),
    "MODELOG_SEAWEEDFS_FILER_PORT": str(port(21336)),
    "MODELOG_SEAWEEDFS_MASTER_GRPC_PORT": str(port(21337)),
    "MODELOG_SEAWEEDFS_VOLUME_GRPC_PORT": str(port(21338)),
    "MODELOG_SEAWEEDFS_FILER_GRPC_PORT": str(port(21339)),
    "MODELOG_SEAWEEDFS_S3_GRPC_PORT": str(port(21340)),
    "MODELOG_MLFLOW_TRACKING_PORT": str(port(21450)),
    "MODELOG_OIDC_PORT": str(port(21444)),
    "MODELOG_REGISTRAR_PORT": str(port(21000)),
    "MODELOG_PROMOTER_PORT": str(port(21001)),
    "MODELOG_PROJECTOR_PORT": str(port(21002)),
    "MODELOG_AUDITOR_PORT": str(port(21003)),
    "MODELOG_SENTINEL_PORT": str(port(21004)),
    # The sentinel's windows, short enough for a test to watch a few close.
    "MODELOG_SENTINEL_WINDOW_S": "3",
    "MODELOG_SENTINEL_GRACE_S": "0.5",
    # No MODELOG_*_URL: the services and the CLI find each other by these
    # ports, as in a local stack whose ports were moved before `make up`.
    # Small enough that a test can send one byte too many in a blink.
    "MODELOG_MAX_UPLOAD_BYTES": str(8 * 1024 * 1024),
}
os.environ.update(TEST_ENV)


@pytest.fixture(scope="session")
def engines():
    """Kafka, PostgreSQL and SeaweedFS, up from nothing for this session."""
    from modelog_platform import engines as local_engines
    from modelog_platform.settings import EngineEndpoints, LocalStack

    # Not under pytest's basetemp: another pytest session on the machine resets
    # /tmp/pytest-of-<user> to 0700, and PostgreSQL, running as its own user,
    # could no longer reach its data directory.
    home = Path(tempfile.mkdtemp(prefix="modelog-test-stack-"))
    os.environ["MODELOG_HOME"] = str(home / "home")
    endpoints, stack = EngineEndpoints(), LocalStack()
    try:
        local_engines.up(endpoints, stack)
        yield endpoints
    finally:
        local_engines.down(stack, endpoints=endpoints)
        if keep := os.environ.get("MODELOG_TEST_KEEP_LOGS"):
            # Whole logs, for a failure the last lines do not explain.
            shutil.copytree(stack.home / "logs", Path(keep) / f"gw{WORKER}-{home.name}", dirs_exist_ok=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def stack(engines):
    """The five services as real processes, ready; stopped at the end."""
    from modelog_platform import services
    from modelog_platform.settings import LocalStack, ServicePorts

    local = LocalStack()
    try:
        services.up(local, ServicePorts())
    except Exception:
        _print_service_logs(local)
        services.down(local)
        raise
    yield ServicePorts()
    services.down(local)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test on the stack shows what each service wrote last: the test
    stack's home, logs included, is gone once the session ends."""
    report = yield
    if report.failed and "stack" in getattr(item, "fixturenames", ()):
        from modelog_platform.settings import LocalStack

        for log in sorted((LocalStack().home / "logs").glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-60:]
            report.sections.append((f"service log {log.name} (last lines)", "\n".join(tail)))
    return report


def _print_service_logs(stack) -> None:
    for log in sorted((stack.home / "logs").glob("*.log")):
        print(f"--- {log.name} (last lines) ---")
        print("\n".join(log.read_text(errors="replace").splitlines()[-40:]))
