"""SplitWatcher's routing, without a stack: a request key's place is fixed by
its sha256, and the routes' cumulative weights, in the split's order, decide
where it goes."""

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from modelog.follower import Target
from modelog.split_watcher import Plan, bucket, pick, planned


def test_a_keys_bucket_is_the_first_eight_bytes_of_its_sha256_modulo_100():
    digest = hashlib.sha256(b"customer-42").digest()
    assert bucket("customer-42") == bucket(b"customer-42") == int.from_bytes(digest[:8], "big") % 100


def test_the_routes_cumulative_weights_split_the_buckets_in_their_order():
    keys = [f"k{n}" for n in range(2000)]
    by_bucket = {bucket(k): k for k in keys}  # a key for each of the 100 places
    assert len(by_bucket) == 100
    routes = [(3, 90), (4, 10)]
    assert {place: pick(routes, key) for place, key in by_bucket.items()} == {
        place: 3 if place < 90 else 4 for place in range(100)}
    assert pick([(4, 10), (3, 90)], by_bucket[5]) == 4  # the order the split lists is the order of the ranges


@given(st.text(), st.lists(st.integers(1, 50), min_size=1, max_size=5).filter(lambda w: sum(w) <= 100))
def test_a_key_always_goes_to_the_same_routed_version(key, weights):
    routes = list(enumerate(weights[:-1], start=1)) + [(len(weights), 100 - sum(weights[:-1]))]
    assert pick(routes, key) == pick(routes, key) in {v for v, _ in routes}


def test_a_lookup_answer_becomes_a_plan_and_one_with_no_routes_none():
    answer = {"production_version": 1, "shadows": [{"version": 3, "artifact": {"sha256": "c"}}],
              "routes": [{"version": 1, "weight": 90, "artifact": {"sha256": "a"}},
                         {"version": 2, "weight": 10, "artifact": {"sha256": "b"}}]}
    assert planned(answer) == Plan(((Target(1, "a"), 90), (Target(2, "b"), 10)), (Target(3, "c"),), 1)
    assert planned({**answer, "routes": []}) is None
