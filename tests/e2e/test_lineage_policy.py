"""A version's lineage (its training run, dataset, model card and signature)
is taken at registration by every door: the upload form, the by-reference
body, the SDK and the CLI. So a policy whose Production gate requires lineage
passes a version registered with it and refuses one without, naming the rule."""

import hashlib
import io
from uuid import uuid4

import httpx
import pytest

from modelog_platform.adapters.s3 import ArtifactStore
from tests.e2e.helpers import bearer, modelog, unique, wait_for_timeline

pytestmark = pytest.mark.engines

DATASET = "s3://datasets/transactions/2026-11.parquet"
DATASET_SHA256 = hashlib.sha256(b"the November transactions").hexdigest()
CARD = "# Fraud detector\n\nTrained on November's transactions. **Fairness:** equal recall across regions.\n"
SIGNATURE = {"inputs": [{"name": "amount", "type": "double"}], "outputs": [{"type": "long"}]}
# Production needs the lineage and no approval, so the gate alone decides.
POLICY = {"lineage_required_for": ["Production"], "approvals_required": {"Production": 0}}


@pytest.fixture
def api(stack):
    with httpx.Client(base_url=stack.url("registrar"), timeout=30, headers=bearer("ci-pipeline", "publisher")) as http:
        yield http


def to_production(api, model: str, version: int) -> httpx.Response:
    staged = api.post(f"/v1/models/{model}/versions/{version}/transitions", json={"to_stage": "Staging"})
    assert staged.status_code == 200, staged.text
    return api.post(f"/v1/models/{model}/versions/{version}/transitions", json={"to_stage": "Production"})


def test_a_lineage_gate_passes_versions_registered_with_lineage_and_refuses_one_without(
        api, admin_client, engines, stack):
    model = unique("lineage")
    lineage = {"run_id": "train-42", "dataset_uri": DATASET, "dataset_sha256": DATASET_SHA256, "model_card": CARD}
    uploaded = api.post(f"/v1/models/{model}/versions", files={"file": ("model.pkl", uuid4().bytes)},
                        data={**lineage, "signature": '{"inputs": [{"name": "amount", "type": "double"}], '
                                                      '"outputs": [{"type": "long"}]}'})
    assert uploaded.status_code == 201, uploaded.text
    admin_client.set_policy(model, POLICY)

    store = ArtifactStore(engines)
    data, key = b"weights " + uuid4().bytes, f"training-runs/{uuid4().hex}/model.bin"
    store.client.put_object(store.bucket, key, io.BytesIO(data), len(data))
    by_reference = api.post(f"/v1/models/{model}/versions/by-reference",
                            json={"uri": f"s3://{store.bucket}/{key}", **lineage, "signature": SIGNATURE})
    assert by_reference.status_code == 201, by_reference.text
    bare = api.post(f"/v1/models/{model}/versions", files={"file": ("model.pkl", uuid4().bytes)},
                    data={"run_id": "train-43"})
    assert bare.status_code == 201, bare.text

    for version in (1, 2):
        shown = api.get(f"/v1/models/{model}/versions/{version}").json()
        assert {k: shown[k] for k in lineage} == lineage
    registered = [e for e in wait_for_timeline(stack.url("auditor"), model, 5)
                  if e["payload"]["type"] == "VersionRegistered"]
    assert [e["payload"]["signature"] for e in registered] == [SIGNATURE, SIGNATURE, {}]

    passed = to_production(api, model, 1)
    assert passed.status_code == 200, passed.text
    assert passed.json()["state"]["version"]["stage"] == "Production"
    assert to_production(api, model, 2).status_code == 200

    refused = to_production(api, model, 3)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "gate_failed"
    failed = [r for r in error["rule_results"] if not r["passed"]]
    assert [r["rule"] for r in failed] == ["lineage_present"]
    assert "dataset_sha256" in failed[0]["detail"] and "model_card" in failed[0]["detail"]
    assert api.get(f"/v1/models/{model}/versions/3").json()["stage"] == "Staging"


def test_the_sdk_and_the_cli_register_a_versions_lineage(client, tmp_path):
    model, artifact, card = unique("lineage-sdk"), tmp_path / "model.pkl", tmp_path / "card.md"
    artifact.write_bytes(uuid4().bytes)
    card.write_text(CARD, encoding="utf-8")
    by_sdk = client.register_version(model, artifact, run_id="train-1", dataset_uri=DATASET,
                                     dataset_sha256=DATASET_SHA256, model_card=CARD, signature=SIGNATURE)
    by_cli = modelog("register", model, str(artifact), "--run-id", "train-2", "--dataset-uri", DATASET,
                     "--dataset-sha256", DATASET_SHA256, "--model-card", str(card),
                     "--signature", '{"inputs": [{"name": "amount", "type": "double"}], "outputs": [{"type": "long"}]}')
    assert by_cli.exit_code == 0, by_cli.output
    versions = [by_sdk["state"]["version"], client.get_version(model, 2)]
    assert [(v["dataset_uri"], v["dataset_sha256"], v["model_card"]) for v in versions] == [
        (DATASET, DATASET_SHA256, CARD)] * 2
    not_json = modelog("register", model, str(artifact), "--signature", "[1, 2]")
    assert not_json.exit_code == 2 and "JSON object" in not_json.output
