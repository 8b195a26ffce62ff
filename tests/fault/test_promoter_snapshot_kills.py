"""The SIGKILL burst of test_promoter_killed.py again, with snapshots written
all the time (every few events and every second), so kills land while
snapshots are being serialised and put, and every restart restores from a
snapshot plus the tail: still exactly one outcome per command, every chain
verifies, and the read models equal a rebuild of the whole log."""

import re

import pytest

from modelog_platform import services
from modelog_platform.settings import LocalStack, ServicePorts
from tests.fault import test_promoter_killed as killed
from tests.fault.read_side import assert_read_models_equal_a_rebuild, committed_data_offsets, wait_until_caught_up

pytestmark = pytest.mark.engines

SNAPSHOTS_ALL_THE_TIME = {"MODELOG_SNAPSHOT_EVERY_EVENTS": "20", "MODELOG_SNAPSHOT_EVERY_S": "1",
                          "MODELOG_SNAPSHOT_KEEP": "3"}


@pytest.fixture
def snapshotting_promoter(stack, monkeypatch):
    """The stack's promoter, restarted (by the test's kills too) with snapshots
    all the time; restarted as the stack runs it afterwards."""
    local = LocalStack()
    for name, value in SNAPSHOTS_ALL_THE_TIME.items():
        monkeypatch.setenv(name, value)  # every services.start of the test inherits them
    services.stop("promoter", local)
    services.start("promoter", local)
    services.wait_ready("promoter", local, ServicePorts(), timeout_s=180)
    yield local, ServicePorts()
    monkeypatch.undo()
    services.stop("promoter", local)
    services.start("promoter", local)
    services.wait_ready("promoter", local, ServicePorts(), timeout_s=180)


async def test_killed_while_writing_snapshots_decides_every_command_exactly_once(stack, engines, snapshotting_promoter):
    local, _ = snapshotting_promoter
    log_start = killed.log_size(local)
    await killed.test_promoter_killed_mid_burst_decides_every_command_exactly_once(engines, snapshotting_promoter)

    log = services.log_path(local, "promoter").read_text(errors="replace")[log_start:]
    written = re.findall(r"snapshot \S+ written", log)
    from_snapshots = [int(n) for n in re.findall(r"models, (\d+) from a snapshot", log)]
    assert len(written) > 20, "snapshots were not written all the time"
    assert from_snapshots and max(from_snapshots) > 0, "no restart restored from a snapshot"

    after_last, events = await committed_data_offsets(engines)
    await wait_until_caught_up(engines, "projector", after_last)
    await assert_read_models_equal_a_rebuild(engines, events)
