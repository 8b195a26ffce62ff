"""The trail's "as of" and "why" in the console. An auditor picks an instant
between two events and sees exactly the state the auditor's API answers for
it, and the changes from then to now in words; the why page of the version in
Production names its request and its approver. A bad instant, an unknown
model or version, and a model outside the person's grants are refusal pages
in words. axe-core finds no serious or critical fault on the new pages."""

import pickle
import time
from datetime import datetime, timedelta

import httpx
import pytest
from playwright.sync_api import expect

from modelog.client import Client
from tests.console.helpers import sign_in_link, signed_in
from tests.console.test_browser import base, check_accessibility, signed_in_page
from tests.e2e.helpers import bearer, token_for, unique, wait_for_timeline

pytestmark = pytest.mark.engines

@pytest.fixture
def history(stack, tmp_path):
    """v1 reached Production through Dana's approval and @champion points at
    it; then v2 replaced it the same way, and @champion followed. Returns the
    model, an instant between v1's promotion and v2's registration, and v2's
    request id."""
    model = unique("fraud-scorer")
    artifact = tmp_path / "model.pkl"
    with (Client(stack.url("registrar"), stack.url("projector"), token=token_for("alice", "publisher")) as alice,
          Client(stack.url("registrar"), stack.url("projector"), token=token_for("dana", "approver")) as dana):
        requests = []
        for version in (1, 2):
            artifact.write_bytes(pickle.dumps({"weights": [version / 10]}))
            alice.register_version(model, artifact, metrics={"auc": 0.8 + version / 100})
            alice.request_transition(model, version, "Staging")
            request = alice.request_transition(model, version, "Production", comment=f"v{version} for Production")
            dana.approve(model, request["request_id"], comment=f"v{version} checked by dana")
            last = alice.set_alias(model, "champion", version)
            requests.append(request["request_id"])
            # Two events a few milliseconds apart, so an instant between them
            # is one a datetime-local field (to the millisecond) can name.
            time.sleep(0.02)
    events = wait_for_timeline(stack.url("auditor"), model, last["seq"])
    v1_aliased = next(e for e in events if e["type"] == "AliasSet")
    after = next(e for e in events if e["seq"] == v1_aliased["seq"] + 1)
    start, end = (datetime.fromisoformat(e["occurred_at"]) for e in (v1_aliased, after))
    between = start + (end - start) / 2
    between -= timedelta(microseconds=between.microsecond % 1000)  # to the millisecond, still after `start`
    assert start <= between < end
    return model, between, requests[1], last["seq"]


def auditor(stack) -> httpx.Client:
    return httpx.Client(base_url=f"{stack.url('auditor')}/v1/audit", headers=bearer("ines", "auditor"), timeout=30)


def test_an_auditor_sees_the_model_as_of_an_instant_and_what_changed_since(stack, browser, history, axe_source):
    model, between, request_id, head = history
    with auditor(stack) as api:
        then = api.get(f"/models/{model}/state", params={"at": between.isoformat()}).json()
    ines = signed_in_page(browser, "ines", "auditor")

    # The form on the trail page, filled as a person would (UTC, to the millisecond).
    ines.goto(f"{base(ines)}/console/models/{model}/trail")
    ines.get_by_label("Instant (UTC)").fill(between.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3])
    ines.get_by_role("button", name="Show as of this instant").click()
    expect(ines.get_by_role("heading", name="As it stood at")).to_be_visible()

    rows = ines.locator("#as-of-versions tbody tr")
    shown = {int(row.locator("th").inner_text().lstrip("v")): row.locator("td").first.inner_text()
             for row in rows.all()}
    assert shown == {int(n): v["stage"] for n, v in then["state"]["versions"].items()} == {1: "Production"}
    aliases = ines.locator("#as-of-aliases li").all_inner_texts()
    assert aliases == [f"@{a} → v{held['version']}" for a, held in sorted(then["state"]["aliases"].items())]
    assert aliases == ["@champion → v1"]
    expect(ines.get_by_text(f"After seq {then['seq']} of the trail")).to_be_visible()

    # The diff to now: every change the auditor lists, each in words.
    with auditor(stack) as api:
        since = api.get(f"/models/{model}/diff", params={"from": str(then["seq"]), "to": str(head)}).json()
    changes = ines.locator("#as-of-changes tbody tr")
    expect(changes).to_have_count(len(since["changes"]))
    said = changes.all_inner_texts()
    for words in ("v2 was registered by alice", "v1 moved from Production to Archived", "@champion moved from v1 to v2"):
        assert any(words in row for row in said), (words, said)
    assert [c["text"] for c in since["changes"]] == ines.locator("#as-of-changes tbody code").all_inner_texts()
    check_accessibility(ines, axe_source, "trail-as-of")

    # Why v2 is in Production: from its page's "why?", the request and who approved it.
    ines.goto(f"{base(ines)}/console/models/{model}/versions/2")
    ines.get_by_role("link", name="why?").click()
    expect(ines.get_by_role("heading", level=1)).to_have_text(f"Why {model} version 2 is in Production")
    expect(ines.locator("#why-request")).to_contain_text("alice requested the move from Staging to Production")
    expect(ines.locator("#why-request")).to_contain_text(request_id)
    expect(ines.locator("#why-reviews")).to_contain_text("dana (approver) approved")
    expect(ines.locator("#why-reviews")).to_contain_text("v2 checked by dana")
    check_accessibility(ines, axe_source, "why")


def test_a_bad_instant_an_unknown_model_or_version_and_a_model_outside_grants_are_refusals_in_words(stack, history):
    """Plain HTTP, no browser: what a page without JavaScript is sent."""
    model = history[0]
    with signed_in(stack, "ines", "auditor") as ines:
        bad = ines.get(f"/console/models/{model}/as-of", params={"at": "last tuesday"})
        assert bad.status_code == 400
        assert "&#39;last tuesday&#39; is not an ISO-8601 instant" in bad.text and "invalid_instant" in bad.text
        both = ines.get(f"/console/models/{model}/as-of", params={"at": "2026-01-01T00:00", "seq": "3"})
        assert both.status_code == 400 and "an instant or a seq, not both" in both.text
        unknown = ines.get(f"/console/models/no-such-{model}/as-of", params={"seq": "1"})
        assert unknown.status_code == 404 and f"no events for model &#39;no-such-{model}&#39;" in unknown.text
        no_version = ines.get(f"/console/models/{model}/versions/9/why")
        assert no_version.status_code == 404 and f"model &#39;{model}&#39; has no version 9" in no_version.text
        before_anything = ines.get(f"/console/models/{model}/as-of", params={"seq": "0"})
        assert before_anything.status_code == 200 and "The model did not exist yet" in before_anything.text
        for refused in (bad, both, unknown, no_version):
            assert "Reason code" in refused.text and "Traceback" not in refused.text
    with httpx.Client(base_url=stack.url("registrar"), timeout=30) as eve:
        eve.get(sign_in_link("eve", "reader", grants=("someone-else",)))
        outside = eve.get(f"/console/models/{model}/as-of", params={"seq": "1"})
        assert outside.status_code == 403 and "Reason code" in outside.text
