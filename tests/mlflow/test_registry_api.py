"""MLflow's own client, pointed at modelog's registrar as its registry, against
the running stack: MLflow's calls keep working, each write lands in modelog's
log under the caller's identity, and modelog's rules (approvals, gates, names
that key a stream) answer in MLflow's words."""

from uuid import uuid4

import httpx
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.e2e.helpers import bearer, token_for, unique

pytestmark = pytest.mark.engines

PUBLISHER = "mlflow-alice"


@pytest.fixture
def client(stack, monkeypatch) -> MlflowClient:
    """MLflow's client as a team runs it: tracking elsewhere, modelog as the registry,
    the modelog token in MLFLOW_TRACKING_TOKEN; no retries, so a 5xx surfaces at once."""
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token_for(PUBLISHER, "publisher", "operator"))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    return MlflowClient(tracking_uri="http://127.0.0.1:9", registry_uri=stack.url("registrar"))


@pytest.fixture
def native(stack):
    with httpx.Client(base_url=stack.url("registrar"), timeout=30, headers=bearer("mlflow-admin", "admin")) as http:
        yield http


def refused(call, *args, **kwargs) -> MlflowException:
    with pytest.raises(MlflowException) as raised:
        call(*args, **kwargs)
    return raised.value


def source(name: str) -> str:
    return f"file:///nowhere/{name}/{uuid4().hex}"  # modelog cannot read it: kept as given, unverified


def test_a_registered_model_is_created_read_updated_tagged_and_deleted_through_mlflows_client(client, native):
    name = unique("mlflow-rm")
    created = client.create_registered_model(name, tags={"team": "fraud"}, description="first")
    assert (created.name, created.description, created.tags) == (name, "first", {"team": "fraud"})
    assert created.creation_timestamp > 1_600_000_000_000  # milliseconds

    client.update_registered_model(name, description="second")
    client.set_registered_model_tag(name, "owner", "alice")
    client.delete_registered_model_tag(name, "team")
    got = client.get_registered_model(name)
    assert (got.description, got.tags, got.latest_versions, got.aliases) == ("second", {"owner": "alice"}, [], {})
    assert got.last_updated_timestamp >= got.creation_timestamp

    duplicate = refused(client.create_registered_model, name)
    assert duplicate.error_code == "RESOURCE_ALREADY_EXISTS"
    assert f"Registered Model (name={name}) already exists." in duplicate.message

    client_as_admin_deletes(native, name)
    gone = refused(client.get_registered_model, name)
    assert gone.error_code == "RESOURCE_DOES_NOT_EXIST"


def client_as_admin_deletes(native: httpx.Client, name: str) -> None:
    """MLflow's delete, sent as MLflow's client sends it (a DELETE with a JSON body), by an admin."""
    answer = native.request("DELETE", "/api/2.0/mlflow/registered-models/delete", json={"name": name})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {}


def test_a_version_keeps_mlflows_fields_and_the_registrant_as_its_user(client):
    name = unique("mlflow-mv")
    client.create_registered_model(name)
    given = source(name)
    version = client.create_model_version(name, given, run_id="run-42", tags={"k": "v"},
                                          run_link="http://tracking/run-42", description="d")
    assert (version.version, version.status, version.current_stage) == ("1", "READY", "None")
    assert (version.source, version.run_id, version.run_link) == (given, "run-42", "http://tracking/run-42")
    assert (version.user_id, version.tags, version.description) == (PUBLISHER, {"k": "v"}, "d")

    client.update_model_version(name, "1", description="better")
    client.set_model_version_tag(name, "1", "checked", "yes")
    client.delete_model_version_tag(name, "1", "k")
    client.set_registered_model_alias(name, "champion", "1")
    got = client.get_model_version(name, "1")
    assert (got.description, got.tags, got.aliases) == ("better", {"checked": "yes"}, ["champion"])
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert client.get_registered_model(name).aliases == {"champion": "1"}
    assert client.get_model_version_download_uri(name, "1") == given

    client.delete_registered_model_alias(name, "champion")
    missing = refused(client.get_model_version_by_alias, name, "champion")
    assert missing.error_code == "INVALID_PARAMETER_VALUE"

    unknown = refused(client.create_model_version, unique("no-such-model"), source(name))
    assert unknown.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert refused(client.get_model_version, name, "7").error_code == "RESOURCE_DOES_NOT_EXIST"
    assert refused(client.get_model_version, name, "one").error_code == "INVALID_PARAMETER_VALUE"


def test_a_promotion_archives_productions_other_versions_in_one_decision_or_leaves_them(client, native):
    name = unique("mlflow-stages")
    client.create_registered_model(name)
    for _ in range(3):
        client.create_model_version(name, source(name))
    no_approvals = {"approvals_required": {}}
    native.put(f"/v1/models/{name}/policy", json={"policy": no_approvals}).raise_for_status()
    for version in "123":
        client.transition_model_version_stage(name, version, "staging")  # stages in any case, as MLflow
    client.transition_model_version_stage(name, "1", "Production")
    client.transition_model_version_stage(name, "2", "Production", archive_existing_versions=False)
    assert [client.get_model_version(name, v).current_stage for v in "12"] == ["Production", "Production"]

    moved = client.transition_model_version_stage(name, "3", "Production", archive_existing_versions=True)
    assert moved.current_stage == "Production"
    assert [client.get_model_version(name, v).current_stage for v in "12"] == ["Archived", "Archived"]
    latest = client.get_latest_versions(name, stages=["Production", "Archived"])
    # MLflow's order: the stages as the versions, oldest first, reach them
    assert [(v.version, v.current_stage) for v in latest] == [("2", "Archived"), ("3", "Production")]
    assert {v.current_stage: v.version for v in client.get_registered_model(name).latest_versions} == {
        "Production": "3", "Archived": "2"}

    bad = refused(client.transition_model_version_stage, name, "3", "Prod")
    assert bad.error_code == "INVALID_PARAMETER_VALUE"
    assert "Invalid Model Version stage: Prod" in bad.message


def test_a_move_to_staging_archives_the_stages_other_versions_when_asked_and_archiving_elsewhere_is_refused(
        client):
    name = unique("mlflow-staging-archive")
    client.create_registered_model(name)
    for _ in range(3):
        client.create_model_version(name, source(name))
    client.transition_model_version_stage(name, "1", "Staging")
    client.transition_model_version_stage(name, "2", "Staging", archive_existing_versions=True)
    assert [client.get_model_version(name, v).current_stage for v in "12"] == ["Archived", "Staging"]

    refusal = refused(client.transition_model_version_stage, name, "3", "Archived", archive_existing_versions=True)
    assert refusal.error_code == "INVALID_PARAMETER_VALUE" and "not an Active stage" in refusal.message
    assert client.get_model_version(name, "3").current_stage == "None"


def test_a_promotion_needing_an_approval_is_an_error_naming_the_request_until_someone_else_approves(
        client, stack):
    name = unique("mlflow-approval")
    client.create_registered_model(name)
    client.create_model_version(name, source(name))
    client.transition_model_version_stage(name, "1", "Staging")

    pending = refused(client.transition_model_version_stage, name, "1", "Production",
                      archive_existing_versions=True)
    assert pending.error_code == "PERMISSION_DENIED"
    assert client.get_model_version(name, "1").current_stage == "Staging"  # nothing moved
    request_id = next(word for word in pending.message.split() if len(word) == 36 and word.count("-") == 4)
    assert f"modelog approve {name} {request_id}" in pending.message

    with httpx.Client(base_url=stack.url("registrar"), timeout=30, headers=bearer("mlflow-bob", "approver")) as bob:
        bob.post(f"/v1/models/{name}/transitions/{request_id}/approve", json={}).raise_for_status()
    assert client.get_model_version(name, "1").current_stage == "Production"


def test_a_transition_the_policy_refuses_lists_the_rules_that_failed(client, native):
    name = unique("mlflow-gate")
    client.create_registered_model(name)
    client.create_model_version(name, source(name))
    policy = {"metric_thresholds": {"Staging": [{"metric": "auc", "op": ">=", "value": 0.9}]}}
    native.put(f"/v1/models/{name}/policy", json={"policy": policy}).raise_for_status()

    gated = refused(client.transition_model_version_stage, name, "1", "Staging")
    assert gated.error_code == "INVALID_PARAMETER_VALUE"
    assert "metric_thresholds" in gated.message and "auc" in gated.message
    assert "transition_allowed" not in gated.message  # the rules that passed are not listed as failures
    assert client.get_model_version(name, "1").current_stage == "None"


def test_a_rename_is_refused_with_why_and_the_model_keeps_its_name_and_history(client):
    name = unique("mlflow-rename")
    client.create_registered_model(name, description="kept")
    client.create_model_version(name, source(name))
    refusal = refused(client.rename_registered_model, name, name + "-new")
    assert refusal.error_code == "INVALID_PARAMETER_VALUE"
    assert "event stream" in refusal.message and "create that model" in refusal.message
    assert client.get_registered_model(name).description == "kept"
    assert refused(client.get_registered_model, name + "-new").error_code == "RESOURCE_DOES_NOT_EXIST"


def test_search_filters_orders_and_pages_as_mlflow_does(client):
    prefix = unique("mlflow-search")
    names = [f"{prefix}-{letter}" for letter in "abc"]
    for index, name in enumerate(names):
        client.create_registered_model(name, tags={"team": "fraud" if index < 2 else "risk"})
        client.create_model_version(name, source(name), run_id=f"run-{index}")

    found = client.search_registered_models(f"name LIKE '{prefix}-%'", order_by=["name DESC"])
    assert [m.name for m in found] == names[::-1]
    assert all(len(m.latest_versions) == 1 for m in found)
    tagged = client.search_registered_models(f"name ILIKE '{prefix.upper()}%' AND tags.`team` = 'fraud'")
    assert [m.name for m in tagged] == names[:2]
    assert [m.name for m in client.search_registered_models(f"name = '{names[1]}'")] == [names[1]]
    others = client.search_registered_models(f"name LIKE '{prefix}%' AND name != '{names[0]}'")
    assert [m.name for m in others] == names[1:]

    first = client.search_registered_models(f"name LIKE '{prefix}%'", max_results=2)
    assert [m.name for m in first] == names[:2] and first.token
    rest = client.search_registered_models(f"name LIKE '{prefix}%'", max_results=2, page_token=first.token)
    assert [m.name for m in rest] == names[2:] and not rest.token

    versions = client.search_model_versions(f"run_id IN ('run-0', 'run-2') AND name LIKE '{prefix}%'",
                                            order_by=["name ASC"])
    assert [(v.name, v.version) for v in versions] == [(names[0], "1"), (names[2], "1")]
    assert [v.name for v in client.search_model_versions(f"name = '{names[1]}'")] == [names[1]]

    invalid = refused(client.search_registered_models, "name LIKE")
    assert invalid.error_code == "INVALID_PARAMETER_VALUE"
    assert refused(client.search_model_versions, "colour = 'red'").error_code == "INVALID_PARAMETER_VALUE"
