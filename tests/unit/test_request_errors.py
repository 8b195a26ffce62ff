"""A request the API cannot take: the 422 body names the first problem in its
message and lists every problem with what is allowed; the SDK's exception
text carries them, and the CLI prints them and exits 2 (usage)."""

from typing import get_args

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from modelog.cli import with_installed_commands
from modelog.cli.registry import USAGE, exit_code
from modelog.client import TRANSITION_STAGES, ModelogError, Refused, _result
from modelog_contract.domain.types import Stage
from modelog_platform.web import VersionNumber, install_error_handlers
from registrar.lifecycle import TransitionRequest


@pytest.fixture
def api():
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/v1/models/{name}/versions/{version}/transitions")
    def transition(name: str, version: VersionNumber, body: TransitionRequest):
        return {"model": name, "to": body.to_stage}

    return TestClient(app)


def test_a_stage_typo_is_a_422_naming_the_field_and_the_allowed_stages(api):
    response = api.post("/v1/models/m/versions/3/transitions", json={"to_stage": "Prodution"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith("the request does not match the API: body.to_stage: ")
    assert all(stage in error["message"] for stage in TRANSITION_STAGES)
    assert error["problems"][0]["loc"] == ["body", "to_stage"]


def test_the_message_counts_the_problems_beyond_the_first(api):
    message = api.post("/v1/models/m/versions/0/transitions", json={"to_stage": "Prodution"}).json()["error"]["message"]
    assert message.startswith("the request does not match the API: path.version: ") and "(and 1 more problem(s))" in message


def test_the_sdk_error_text_carries_every_problem_and_the_cli_calls_it_usage(api):
    with pytest.raises(Refused) as raised:
        _result(api.post("/v1/models/m/versions/0/transitions", json={"to_stage": "Prodution"}))
    text = str(raised.value)
    assert text.startswith("422 invalid_request: ")
    assert "\n  path.version: Input should be greater than or equal to 1" in text
    assert "\n  body.to_stage: Input should be" in text and "'Production'" in text
    assert len(raised.value.problems) == 2
    assert exit_code(raised.value) == USAGE == 2


def test_other_refusals_keep_their_exit_codes():
    assert exit_code(ModelogError(409, "version_conflict", "moved on", {})) == 1
    assert exit_code(ModelogError(422, "gate_failed", "a rule failed", {})) == 1
    assert exit_code(ModelogError(503, "unavailable", "down", {})) == 3


def test_the_cli_refuses_an_unknown_stage_before_any_request():
    nowhere = {"MODELOG_REGISTRAR_URL": "http://127.0.0.1:9", "MODELOG_PROJECTOR_URL": "http://127.0.0.1:9"}
    result = CliRunner().invoke(with_installed_commands(), ["promote", "m", "3", "--to", "Prodution"], env=nowhere)
    assert result.exit_code == 2  # 3 would mean it tried the (unreachable) registry
    assert "Prodution" in result.output and all(stage in result.output for stage in TRANSITION_STAGES)


def test_the_clis_stages_are_the_contracts_stages_one_may_move_to():
    assert set(TRANSITION_STAGES) == set(get_args(Stage)) - {"None"}
