"""The projector's seq checks (`GET /v1/seqs`, asked by the registrar's MLflow
cache once per batch of reads) on the lookups' fast path: a known reader's
check skips FastAPI and gets the very answer the route gives, grants
narrowing it as there; everything else goes on to the route and its errors."""

from urllib.parse import urlencode

import pytest

from projector import model_views
from projector.lookup_fast_path import LookupFastPath
from tests.integration.test_lookup_fast_path import answered_by_fastapi, as_caller, exchange, projector_app  # noqa: F401 (a fixture)

pytestmark = pytest.mark.engines


def seqs(*names: str) -> str:
    return "/v1/seqs?" + urlencode([("name", n) for n in names])


async def test_a_known_readers_seq_checks_skip_fastapi_and_answer_as_the_route_does(projector_app):  # noqa: F811
    counted, issuer = projector_app
    counted.app.include_router(model_views.router)
    fast = LookupFastPath(counted)
    reader = as_caller(issuer, "modelog-registrar", ("reader",))
    other_team = as_caller(issuer, "bob", ("reader",), ("team-b.*",))
    for headers in (reader, other_team):
        await exchange(counted, "GET", "/v1/models/fraud", headers)  # both tokens known from here on
    for path, headers in [(seqs("fraud"), reader), (seqs("fraud", "nobody", "fraud"), reader),
                          (seqs("nobody"), reader), (seqs("fraud"), other_team), (seqs("fraud") + "&x=1", reader)]:
        calls = counted.calls
        answered = await exchange(fast, "GET", path, headers)
        assert counted.calls == calls, f"{path} reached FastAPI"
        assert answered == await exchange(counted, "GET", path, headers), path
    status, _, body = await exchange(fast, "GET", seqs("fraud", "nobody"), reader)
    assert status == 200 and body.startswith(b'{"seqs":{"fraud":[7,')


async def test_other_seq_checks_go_on_to_the_route_and_its_errors(projector_app):  # noqa: F811
    counted, issuer = projector_app
    counted.app.include_router(model_views.router)
    fast = LookupFastPath(counted)
    reader = as_caller(issuer, "modelog-registrar", ("reader",))
    never_seen = as_caller(issuer, "new-caller", ("reader",))
    no_role = as_caller(issuer, "nobody-much", ())
    for headers in (reader, no_role):
        await exchange(counted, "GET", "/v1/models", headers)
    left_to_fastapi = [
        (seqs("fraud"), never_seen, 200),  # verified now, by FastAPI
        (seqs("fraud"), {}, 401),
        (seqs("fraud"), no_role, 403),
        ("/v1/seqs", reader, 422),  # no names
        (seqs(*(f"m{i}" for i in range(model_views.MAX_SEQS + 1))), reader, 422),
    ]
    for path, headers, status in left_to_fastapi:
        assert await answered_by_fastapi(fast, counted, "GET", path, headers) == status, path[:40]
