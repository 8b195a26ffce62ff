"""MLflow webhook requests, the checks before anything is stored: names, URLs,
events and statuses as MLflow's server takes them, and page tokens."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelog_platform.web import ApiError
from projector.mlflow_webhooks_api import (
    WireEvent,
    checked_events,
    checked_name,
    checked_status,
    checked_url,
    has_nul,
    page_offset,
    page_token,
)


@pytest.mark.parametrize("name", ["deployments", "ci.hooks-2", "a", "A_b.c-9", "x" * 63])
def test_a_name_as_mlflow_allows_it_is_taken(name):
    assert checked_name(name) == name


@pytest.mark.parametrize("name", ["", "-lead", "trail.", "has space", "x" * 64, "ünï"])
def test_a_name_mlflow_refuses_is_refused_saying_what_a_name_may_be(name):
    with pytest.raises(ApiError) as refused:
        checked_name(name)
    assert refused.value.status == 400 and "must start and end with a letter or digit" in refused.value.message


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000/hook", "https://ci.example/registry"])
def test_http_and_https_urls_with_a_host_are_taken(url):
    assert checked_url(url) == url


@pytest.mark.parametrize("url, words", [("", "empty"), ("ftp://ci.example/x", "scheme"),
                                        ("https:///no-host", "hostname"), ("ci.example/x", "scheme"),
                                        ("http://ci.example:99999/x", "Invalid webhook URL")])
def test_other_urls_are_refused_saying_why(url, words):
    with pytest.raises(ApiError) as refused:
        checked_url(url)
    assert words in refused.value.message


def test_events_from_both_lists_are_taken_once_each_in_order():
    given_events = [WireEvent(entity="MODEL_VERSION", action="CREATED"),
                    WireEvent(entity="model_version_stage", action="transitioned")]
    again = [WireEvent(entity="MODEL_VERSION", action="CREATED")]
    assert checked_events(given_events, again) == ["model_version.created", "model_version_stage.transitioned"]


def test_no_events_or_an_unknown_one_is_refused():
    with pytest.raises(ApiError, match="non-empty"):
        checked_events([], None)
    with pytest.raises(ApiError, match="unknown webhook event"):
        checked_events([WireEvent(entity="PROMPT", action="CREATED")])


def test_a_status_is_active_or_disabled():
    assert checked_status("ACTIVE") is True and checked_status("DISABLED") is False
    with pytest.raises(ApiError, match="status"):
        checked_status("PAUSED")


@given(st.integers(0, 10**9))
def test_a_page_token_gives_back_its_offset(offset):
    assert page_offset(page_token(offset)) == offset


@pytest.mark.parametrize("token", ["not base64!", "e30=", "eyJvZmZzZXQiOiAtMX0=", "bnVsbA==",
                                   page_token(2**63)])
def test_a_page_token_not_made_here_is_refused(token):
    with pytest.raises(ApiError, match="page token"):
        page_offset(token)


def test_a_nul_character_anywhere_in_a_request_is_found():
    assert has_nul({"events": [{"entity": "MODEL\x00VERSION"}]}) and has_nul({"k\x00": 1})
    assert not has_nul({"name": "deployments", "events": [{"entity": "MODEL_VERSION"}], "n": 1})
