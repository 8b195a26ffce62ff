"""MLflow's search grammar as modelog reads it: every filter MLflow's client
sends parses (its own appended prompt clause included), each comparison means
what MLflow's stores make of it, anything else is refused as invalid, and
pages cover every match once, in order."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registrar.mlflow.search import (
    MODEL_DEFAULT_ORDER,
    MODEL_ORDER,
    MODEL_VERSIONS,
    REGISTERED_MODELS,
    VERSION_DEFAULT_ORDER,
    VERSION_ORDER,
    Comparison,
    InvalidSearch,
    like,
    matches,
    ordered,
    page,
    parse_filter,
    parse_order_by,
)

PROMPT_CLAUSE = "tag.`mlflow.prompt.is_prompt` != 'true'"


def model(name: str, **tags: str) -> dict:
    return {"name": name, "tags": [{"key": k, "value": v} for k, v in tags.items()]}


def test_the_clause_mlflows_client_appends_to_every_model_search_parses_and_keeps_every_non_prompt():
    comparisons = parse_filter(f"name LIKE 'fraud-%' AND {PROMPT_CLAUSE}", REGISTERED_MODELS)
    assert comparisons == (Comparison("attribute", "name", "LIKE", "fraud-%"),
                           Comparison("tag", "mlflow.prompt.is_prompt", "!=", "true"))
    assert matches(model("fraud-a"), comparisons)  # no prompt tag: not a prompt
    assert not matches(model("fraud-b", **{"mlflow.prompt.is_prompt": "true"}), comparisons)
    assert not matches(model("churn"), comparisons)


@pytest.mark.parametrize("text, expected", [
    ("name = 'a'", Comparison("attribute", "name", "=", "a")),
    ('name != "a b"', Comparison("attribute", "name", "!=", "a b")),
    ("name ilike '%A%'", Comparison("attribute", "name", "ILIKE", "%A%")),
    ("tags.team = 'fraud'", Comparison("tag", "team", "=", "fraud")),
    ("tags.`team.lead` LIKE 'a%'", Comparison("tag", "team.lead", "LIKE", "a%")),
    ('tags."with space" = \'x\'', Comparison("tag", "with space", "=", "x")),
    ("`name` = 'quoted'", Comparison("attribute", "name", "=", "quoted")),
])
def test_each_form_of_a_model_comparison_parses(text, expected):
    assert parse_filter(text, REGISTERED_MODELS) == (expected,)


def test_a_version_search_takes_in_lists_and_numbers():
    assert parse_filter("run_id IN ('r1', 'r2') and version_number >= 2 AND name NOT IN ('x')",
                        MODEL_VERSIONS) == (
        Comparison("attribute", "run_id", "IN", ("r1", "r2")),
        Comparison("attribute", "version_number", ">=", 2),
        Comparison("attribute", "name", "NOT IN", ("x",)))


@pytest.mark.parametrize("text", [
    "name LIKE", "name", "= 'a'", "name = a", "name = 'a' OR name = 'b'", "colour = 'red'",
    "name IN ('a')", "tags.k > 'a'", "name = 'a' AND", "name = 'unterminated", "name == 'a'",
    "run_id LIKE 'a%'",
])
def test_a_filter_mlflow_would_refuse_is_invalid(text):
    entity = MODEL_VERSIONS if text.startswith("run_id") else REGISTERED_MODELS
    with pytest.raises(InvalidSearch):
        parse_filter(text, entity)


def test_a_tag_comparison_needs_the_tag_as_mlflows_stores_join_on_it():
    comparisons = parse_filter("tags.team != 'risk'", REGISTERED_MODELS)
    assert matches(model("a", team="fraud"), comparisons)
    assert not matches(model("b"), comparisons)


names = st.text(alphabet="abAB-_.%", min_size=0, max_size=8)


@given(names)
def test_a_pattern_without_wildcards_matches_only_itself(text):
    literal = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    assert like(literal, text)
    assert not like(literal, text + "x")


@given(names, names)
def test_like_is_case_sensitive_and_ilike_is_not(prefix, rest):
    text = prefix + rest
    assert like(prefix.replace("%", "\\%").replace("_", "\\_") + "%", text)
    assert like(text.upper().replace("%", "\\%").replace("_", "\\_"), text, ignore_case=True)


@given(st.text(alphabet="abc", min_size=1, max_size=3), st.sampled_from(["=", "!=", "LIKE", "ILIKE"]),
       st.text(alphabet="abc%_", max_size=3))
def test_every_name_comparison_parses_back_to_itself(name, op, value):
    (comparison,) = parse_filter(f"name {op} '{value}' AND {PROMPT_CLAUSE}", REGISTERED_MODELS)[:1]
    assert comparison == Comparison("attribute", "name", op, value)
    equal = matches(model(name), parse_filter(f"name = '{value}'", REGISTERED_MODELS))
    differ = matches(model(name), parse_filter(f"name != '{value}'", REGISTERED_MODELS))
    assert equal != differ


@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(1, 5)), max_size=20), st.integers(1, 7))
def test_pages_cover_every_match_once_in_order(rows, size):
    entities = [{"name": n, "version": str(v), "last_updated_timestamp": v} for n, v in rows]
    order = parse_order_by(["name ASC"], VERSION_ORDER, VERSION_DEFAULT_ORDER)
    everything = ordered(entities, order)
    seen, token = [], None
    while True:
        chunk, token = page(everything, token, size)
        seen += chunk
        if token is None:
            break
    assert seen == everything
    assert [e["name"] for e in everything] == sorted(e["name"] for e in entities)


def test_order_by_is_the_callers_then_mlflows_default_and_refuses_unknown_keys():
    assert parse_order_by(["last_updated_timestamp DESC"], MODEL_ORDER, MODEL_DEFAULT_ORDER) == (
        ("last_updated_timestamp", False), ("name", True))
    with pytest.raises(InvalidSearch):
        parse_order_by(["colour"], MODEL_ORDER, MODEL_DEFAULT_ORDER)
    with pytest.raises(InvalidSearch):
        page([], "not-a-token", 10)
