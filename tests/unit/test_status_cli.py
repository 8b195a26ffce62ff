"""`modelog status` (what `make status` runs): the engines and the five services
of the stack home, whether or not anything runs."""

from typer.testing import CliRunner

from modelog.cli import with_installed_commands
from modelog_platform.services import SERVICES


def test_status_of_a_stack_never_started_lists_engines_and_every_service_as_not_running(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELOG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MODELOG_PROJECTOR_PORT", "9102")
    monkeypatch.delenv("MODELOG_PROJECTOR_URL", raising=False)
    result = CliRunner().invoke(with_installed_commands(), ["status"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert str(tmp_path / "home") in result.output
    rows = {line.split()[1]: line for line in result.output.splitlines() if line.startswith("│")}
    assert {"kafka", "postgres", *SERVICES} <= set(rows), result.output
    for service in SERVICES:
        assert rows[service].split()[3] == "no"  # running
    assert "http://127.0.0.1:9102" in rows["projector"]
