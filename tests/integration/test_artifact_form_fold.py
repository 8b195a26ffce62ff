"""A version's artifact form is a fact of its VersionRegistered: the live
projection records it in model_versions.artifact_form as a rebuild does, for
each of the three forms, and a version registered before forms existed (no
form in its event) is one file."""

import asyncio
import hashlib

import pytest

from modelog_contract.domain.commands import RegisterVersion
from modelog_contract.domain.types import Artifact
from projector.fold import COLUMNS
from tests.integration.test_read_model_fold import live_and_rebuilt
from tests.unit.builders import Scenario, command

pytestmark = pytest.mark.engines

SOURCE = "mlflow-artifacts:/unreadable/model"
FORMS = {
    1: Artifact(uri=f"s3://modelog-artifacts/sha256/{1:064x}", sha256=f"{1:064x}", size=10),
    2: Artifact(uri=f"s3://modelog-artifacts/sha256/{2:064x}", sha256=f"{2:064x}", size=99, form="manifest"),
    3: Artifact(uri=SOURCE, sha256=hashlib.sha256(SOURCE.encode()).hexdigest(), size=0, form="unverified"),
}


def test_the_live_projection_records_each_versions_form_as_a_rebuild_does(engines):
    scenario = Scenario("forms")
    log = [event for artifact in FORMS.values()
           for event in scenario.when(command(RegisterVersion, model="forms", artifact=artifact))]
    tables = asyncio.run(live_and_rebuilt(engines.postgres(), log, [2]))
    live, rebuilt = tables["model_versions"]
    assert live == rebuilt
    version, form = COLUMNS["model_versions"].index("version"), COLUMNS["model_versions"].index("artifact_form")
    assert {row[version]: row[form] for row in live} == {1: "file", 2: "manifest", 3: "unverified"}
