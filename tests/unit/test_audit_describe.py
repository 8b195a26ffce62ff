"""The audit CLI's one-line descriptions name what each event changed."""

from modelog.cli.audit import describe


def test_a_model_card_revision_reads_as_its_summary():
    event = {"type": "ModelCardRevised",
             "payload": {"version": 3, "model_card": "# Churn\n\nFairness: ...", "summary": "fairness results added"}}
    assert describe(event) == "v3 model card revised: fairness results added"


def test_an_event_without_its_own_words_reads_as_its_type_and_version():
    assert describe({"type": "VersionUpdated", "payload": {"version": 2, "description": "d"}}) == "v2 VersionUpdated"


def test_a_traffic_split_reads_as_its_routes_and_shadows():
    event = {"type": "TrafficSplitSet", "payload": {"routes": [{"version": 3, "weight": 90}, {"version": 4, "weight": 10}],
                                                     "shadows": [5], "production_version": 3}}
    assert describe(event) == "traffic split v3 90%, v4 10%, shadow v5"
