"""Two promoters own different partitions and do not share their memory of
spent token ids; a command token is bound to its command, so the same token
on a second command, sent to a partition the other promoter owns, is refused
there all the same."""

from datetime import datetime, timezone
from hashlib import sha256
from uuid import uuid4

import pytest

from modelog_contract.domain.commands import RegisterVersion
from modelog_contract.domain.types import Actor, Artifact
from modelog_platform.identity.dev import signed
from modelog_platform.settings import LocalStack
from tests.e2e.helpers import decided
from tests.fault import instances
from tests.fault.instances import instance_name, model_on, split_among_all, wait_for_shares

pytestmark = pytest.mark.engines

ALICE = Actor(subject="alice", roles=("publisher",))


@pytest.fixture
def two_promoters(stack):
    """The stack's promoter and a second one; the second stopped afterwards,
    and the first holding every partition again."""
    local = LocalStack()
    urls = {instance_name("promoter", n): instances.ports_of(stack, "promoter", n).url("promoter") for n in (1, 2)}
    try:
        instances.start(local, stack, "promoter", 2)
        yield urls
    except BaseException:
        instances.print_logs(local, list(urls))
        raise
    finally:
        instances.stop_added(local, stack, ["promoter-2"])


def registration(model: str, actor: Actor = ALICE) -> RegisterVersion:
    digest = sha256(model.encode()).hexdigest()
    return RegisterVersion(command_id=uuid4(), model=model, actor=actor, issued_at=datetime.now(timezone.utc),
                           artifact=Artifact(uri=f"s3://b/{digest}", sha256=digest, size=1))


async def test_a_token_replayed_on_a_partition_another_promoter_owns_is_refused(engines, stack, two_promoters):
    shares = await wait_for_shares(two_promoters, split_among_all, "the partitions split between both")
    first, second = shares.values()
    run = uuid4().hex[:6]
    original, token = signed(registration(model_on(first, f"bound-{run}")))
    assert (await decided(engines, stack, original, token))["accepted"]

    replay = registration(model_on(second, f"replayed-{run}"), actor=original.actor)
    outcome = await decided(engines, stack, replay, token)
    assert (outcome["accepted"], outcome["reason"]) == (False, "unauthenticated")
    assert "bound to another command" in outcome["message"]
    # Judged by the replay's partition's owner, which never saw the token spent.
    assert await wait_for_shares(two_promoters, lambda now: True, "answering") == shares
