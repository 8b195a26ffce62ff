"""The `modelog` command against the running stack: what it prints, and exit
codes a script can use (0 done, 1 refused, 2 bad usage, 3 unreachable)."""

import hashlib

import pytest

from tests.e2e.helpers import modelog, unique

pytestmark = pytest.mark.engines


def test_a_model_goes_through_the_cli_from_upload_to_download(stack, trained_model, tmp_path):
    model = unique("cli")
    registered = modelog("register", model, str(trained_model), "--metric", "auc=0.91", "--run-id", "r1")
    assert registered.exit_code == 0, registered.output
    assert f"{model} version 1" in registered.output and "VersionRegistered" in registered.output

    listed = modelog("ls", "--name", model)
    assert listed.exit_code == 0 and model in listed.output

    staged = modelog("promote", model, "1", "--to", "Staging")
    assert staged.exit_code == 0 and "StageChanged" in staged.output
    waiting = modelog("promote", model, "1", "--to", "Production")
    assert waiting.exit_code == 0 and "waiting for approval" in waiting.output
    request_id = waiting.output.split("request ")[1].split(":")[0].strip()

    shown = modelog("show", model)
    assert shown.exit_code == 0
    assert "Staging" in shown.output and f"pending: request {request_id}" in shown.output

    # Without a role the decider refuses the approval: exit 1, the code printed.
    refused = modelog("approve", model, request_id)
    assert refused.exit_code == 1 and "forbidden" in refused.output

    aliased = modelog("alias", model, "champion", "1")
    assert aliased.exit_code == 0 and "AliasSet" in aliased.output
    history = modelog("history", model)
    assert history.exit_code == 0 and "Staging" in history.output

    out = tmp_path / "copy.pkl"
    downloaded = modelog("download", model, "1", "-o", str(out))
    assert downloaded.exit_code == 0 and "sha256 verified" in downloaded.output
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(trained_model.read_bytes()).digest()


def test_refusals_usage_errors_and_outages_have_distinct_exit_codes(stack, trained_model):
    missing = modelog("promote", unique("nobody"), "1", "--to", "Staging")
    assert missing.exit_code == 1 and "model_not_found" in missing.output

    bad_metric = modelog("register", unique("m"), str(trained_model), "--metric", "auc")
    assert bad_metric.exit_code == 2 and "name=value" in bad_metric.output

    down = modelog("ls", env={"MODELOG_PROJECTOR_URL": "http://127.0.0.1:9", "MODELOG_RETRY_FOR_S": "1"})
    assert down.exit_code == 3 and "cannot reach the registry" in down.output


def test_a_request_the_api_cannot_take_prints_its_problems_and_is_a_usage_error(stack):
    typo = modelog("promote", unique("m"), "3", "--to", "Prodution", env={"COLUMNS": "200"})
    assert typo.exit_code == 2 and "is not one of 'Staging', 'Production', 'Archived'" in typo.output

    no_such_version = modelog("promote", unique("m"), "0", "--to", "Staging")  # refused by the API, not the CLI
    assert no_such_version.exit_code == 2, no_such_version.output
    assert "invalid_request" in no_such_version.output
    assert "path.version: Input should be greater than or equal to 1" in no_such_version.output


def test_without_a_token_or_with_a_broken_one_the_cli_says_what_to_do(stack):
    without = modelog("ls", env={"MODELOG_TOKEN": ""})
    assert without.exit_code == 1 and "unauthenticated" in without.output
    assert "MODELOG_TOKEN" in without.output and "modelog token issue --sub you --roles" in without.output

    broken = modelog("ls", env={"MODELOG_TOKEN": "not-a-token"})
    assert broken.exit_code == 1 and "the bearer token is not a JWT" in broken.output


def test_status_shows_every_engine_and_service_running_and_ready(stack):
    status = modelog("status", env={"COLUMNS": "200"})
    assert status.exit_code == 0, status.output
    cells = [[cell.strip() for cell in line.strip("│").split("│")]
             for line in status.output.splitlines() if line.startswith("│")]
    rows = {row[0]: row for row in cells}
    assert all(rows[engine][1] == "yes" for engine in ("kafka", "postgres", "seaweedfs")), status.output
    for service in ("registrar", "promoter", "projector", "auditor"):
        _, running, _, _, url, ready = rows[service]
        assert (running, ready, url) == ("yes", "yes", stack.url(service)), status.output


def test_projections_rebuild_replays_the_log_and_matches_the_live_read_models(stack, trained_model):
    assert modelog("register", unique("rebuilt"), str(trained_model)).exit_code == 0
    rebuilt = modelog("projections", "rebuild")
    assert rebuilt.exit_code == 0, (rebuilt.output, repr(rebuilt.exception))
    assert "replayed" in rebuilt.output and "match" in rebuilt.output
