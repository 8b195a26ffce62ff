"""The approvals inbox across many models: the projector lists every request
still waiting, of every model the caller's grants cover, in one query (a page
at a time), and the console's inbox shows exactly those: none that was
approved or denied, none of a model outside the reviewer's grants."""

import html
import pickle
import re

import httpx
import pytest

from modelog.client import Client
from registrar.console.approvals import REQUESTS_PER_PAGE
from tests.console.helpers import signed_in
from tests.e2e.helpers import bearer, token_for, unique

pytestmark = pytest.mark.engines
MODELS = REQUESTS_PER_PAGE + 4  # more waiting requests than one page of the inbox holds


@pytest.fixture(scope="module")
def requests_by_model(stack, tmp_path_factory) -> tuple[str, dict[str, str]]:
    """Given MODELS models, each with version 1 asked into Production by alice;
    then bob approves the first model's request and denies the second's."""
    prefix = unique("inbox")
    artifact = tmp_path_factory.mktemp("inbox") / "model.pkl"
    asked: dict[str, str] = {}
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("alice", "publisher")) as alice:
        for i in range(MODELS):
            model = f"{prefix}-m{i}"
            artifact.write_bytes(pickle.dumps([i]))
            alice.register_version(model, artifact)
            alice.request_transition(model, 1, "Staging")
            asked[model] = alice.request_transition(model, 1, "Production")["request_id"]
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("bob", "approver")) as bob:
        bob.approve(f"{prefix}-m0", asked[f"{prefix}-m0"])
        bob.deny(f"{prefix}-m1", asked[f"{prefix}-m1"])
    return prefix, asked


def waiting_of(stack, prefix: str, limit: int, grants: tuple[str, ...] = ()) -> list[dict]:
    """Every page of GET /v1/transitions, following `next`, for models named `prefix`-*."""
    found, cursor = [], {}
    with httpx.Client(base_url=stack.url("projector"), headers=bearer("carol", "reader", grants=grants)) as http:
        while True:
            page = http.get("/v1/transitions", params={"limit": limit, **cursor})
            assert page.status_code == 200, page.text
            found += [p for p in page.json()["pending"] if p["model"].startswith(prefix)]
            if not (cursor := page.json()["next"]):
                return found


def test_one_listing_holds_every_waiting_request_across_models_and_none_that_was_decided(stack, requests_by_model):
    prefix, asked = requests_by_model
    waiting = {f"{prefix}-m{i}": asked[f"{prefix}-m{i}"] for i in range(2, MODELS)}
    listed = waiting_of(stack, prefix, limit=1000)
    assert {p["model"]: p["request_id"] for p in listed} == waiting
    assert len(listed) == len(waiting)
    assert all(p["version"] == 1 and p["to_stage"] == "Production" and p["requested_by"] == "alice" for p in listed)


def test_pages_of_waiting_requests_follow_one_another_with_none_twice_or_missed(stack, requests_by_model):
    prefix, _ = requests_by_model
    whole = waiting_of(stack, prefix, limit=1000)
    in_pages = waiting_of(stack, prefix, limit=1)
    assert [p["request_id"] for p in in_pages] == [p["request_id"] for p in whole]


def test_a_reader_with_grants_lists_only_the_waiting_requests_of_models_they_cover(stack, requests_by_model):
    prefix, asked = requests_by_model
    listed = waiting_of(stack, prefix, limit=1000, grants=(f"{prefix}-m2", f"{prefix}-m5*"))
    assert {p["request_id"] for p in listed} == {asked[f"{prefix}-m2"], asked[f"{prefix}-m5"]}


def test_the_inbox_shows_the_waiting_requests_of_every_model_and_none_that_was_decided(stack, requests_by_model):
    prefix, asked = requests_by_model
    pages = []
    with signed_in(stack, "carol", "approver") as carol:
        following: str | None = "/console/approvals"
        while following:
            inbox = carol.get(following)
            assert inbox.status_code == 200
            pages.append(inbox.text)
            more = re.search(r'<a href="([^"]+)">More waiting requests</a>', inbox.text)
            following = html.unescape(more.group(1)) if more else None
    assert len(pages) >= 2 and all(text.count('<article class="request"') <= REQUESTS_PER_PAGE for text in pages)
    shown = [model for text in pages for model, request_id in asked.items() if f'id="req-{request_id}"' in text]
    assert sorted(shown) == sorted(f"{prefix}-m{i}" for i in range(2, MODELS))
