"""The sentinel folds the log a chunk at a time with each model's run proven
by the signatures at its ends (decision 0013): whatever a record forged,
altered, unsigned or forked anywhere, and wherever the chunks are cut, its
book and its count of refused records are the ones proving every record alone
gives."""

import asyncio
import itertools
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from modelog_contract.domain.state import ModelState
from modelog_contract.proven import Refused, proven_event
from modelog_platform.settings import EngineEndpoints
from sentinel.book import Book
from sentinel.follower import Follower
from tests.unit.test_replay_proofs import KINDS, LOG, TRUSTED, tampered


def records(values: list[bytes]) -> list[SimpleNamespace]:
    return [SimpleNamespace(value=value, partition=0, offset=offset) for offset, value in enumerate(values)]


def folded_in_chunks(values: list[bytes], cuts: list[int]) -> tuple[Book, int]:
    follower = Follower(EngineEndpoints(), TRUSTED, Book())
    bounds = sorted({0, len(values), *(c % (len(values) + 1) for c in cuts)})

    async def fold() -> None:
        for start, stop in itertools.pairwise(bounds):
            await follower._apply(records(values[start:stop]))  # type: ignore[arg-type]
    asyncio.run(fold())
    return follower.book, follower.refused


def folded_one_by_one(values: list[bytes]) -> tuple[Book, int]:
    book, refused = Book(), 0
    for value in values:
        event = proven_event(value, TRUSTED)
        if isinstance(event, Refused):
            refused += 1
        else:
            book.apply(event)
    return book, refused


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(KINDS), at=st.integers(0, len(LOG) - 1), cuts=st.lists(st.integers(0, 40), max_size=3))
def test_a_tampered_record_anywhere_leaves_the_book_proving_each_record_gives(kind, at, cuts):
    values = tampered(LOG, kind, at)
    (book, refused), (reference, refused_alone) = folded_in_chunks(values, cuts), folded_one_by_one(values)
    assert refused == refused_alone
    assert refused > 0 or kind in ("fork by the writer", "dropped")  # neither has a record to refuse
    assert vars(book) == vars(reference)


def test_an_untouched_log_folds_whole_in_any_chunks():
    book, refused = folded_in_chunks(LOG, [5, 17])
    assert refused == 0 and book.events == len(LOG)
    assert sorted(book.states) == ["churn", "fraud-detector", "ltv"]
    assert vars(book) == vars(folded_one_by_one(LOG)[0])


def decoded(book: Book) -> dict[str, ModelState]:
    return {**{name: ModelState.model_validate_json(json) for name, json in book.resting.items()}, **book.states}


@settings(max_examples=100, deadline=None)
@given(rests=st.sets(st.integers(0, len(LOG))), asked=st.lists(st.sampled_from(["churn", "ltv", "nobody"])))
def test_states_at_rest_as_json_fold_and_answer_as_the_ones_kept_decoded(rests, asked):
    """Rested after any event, and asked about any model between rests, the
    book ends with the states, and gives the answers, of one never rested."""
    events = [proven_event(value, TRUSTED) for value in LOG]
    resting, reference = Book(), Book()
    for n, event in enumerate(events):
        assert not isinstance(event, Refused)
        if n in rests:
            resting.rest()
            for model in asked:
                resting.knows(model)
        resting.apply(event)
        reference.apply(event)
    resting.rest()  # what the last events touched stays decoded, until a rest finds it untouched
    resting.rest()
    assert not resting.states and len(resting.resting) == 3
    assert decoded(resting) == reference.states and resting.models() == reference.models() == 3
    for model in ["churn", "fraud-detector", "ltv", "nobody"]:
        assert (resting.knows(model), resting.policy(model), resting.serving(model), resting.split(model),
                resting.seq(model)) == (reference.knows(model), reference.policy(model), reference.serving(model),
                                        reference.split(model), reference.seq(model))
