"""What is live where, on the console: a model's page lists its serving
instances under each version they reported, and the trail says each report
in words."""

import re
import time
from datetime import datetime, timezone

import pytest

from modelog.client import Client
from tests.console.helpers import signed_in
from tests.e2e.helpers import token_for, unique

pytestmark = pytest.mark.engines


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_model_page_shows_instances_per_version_and_the_trail_says_each_report(stack, tmp_path):
    model = unique("live-page")
    artifact = tmp_path / "model.bin"
    since = datetime(2026, 12, 3, 0, 10, 5, tzinfo=timezone.utc)
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("alice", "publisher")) as alice:
        for n in (1, 2):
            artifact.write_bytes(f"version {n} of {model}".encode())
            alice.register_version(model, artifact)
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("fleet", "server")) as fleet:
        fleet.report_serving(model, 1, instance="web-1", since=since, host="node-a", target="stage:Production")
        fleet.report_serving(model, 2, instance="web-2", since=since, target="alias:champion")
        fleet.report_serving(model, 2, instance="web-3", since=since)
    with signed_in(stack, "ines", "reader") as browser:
        page = text_of(browser.get(f"/console/models/{model}").text)
        deadline = time.monotonic() + 30
        while "web-3" not in page and time.monotonic() < deadline:  # the projector may be a moment behind
            time.sleep(0.2)
            page = text_of(browser.get(f"/console/models/{model}").text)
        live = page[page.index("Live where"):page.index("Pending requests")]
        assert "v2 web-2 (alias:champion), since 2026-12-03 00:10:05 UTC web-3 , since" in live
        assert "v1 web-1 on node-a (stage:Production), since 2026-12-03 00:10:05 UTC" in live
        assert live.index("v2") < live.index("v1")  # the newest version first
        trail = text_of(browser.get(f"/console/models/{model}/trail").text)
    assert ("ServingReported · fleet") not in trail  # said in words, not only by its type
    assert "instance web-1 on node-a serves v1 since 2026-12-03 00:10:05 UTC (stage:Production)" in trail
    assert "instance web-3 serves v2 since 2026-12-03 00:10:05 UTC" in trail
