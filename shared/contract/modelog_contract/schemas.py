"""The wire contract as JSON Schema, generated from the pydantic models.

Services that publish straight to modelog.commands validate against these; the
registrar serves them at /v1/schemas, and modelog_contract/schemas/ keeps a copy
in the package (a test holds it equal to the code). Regenerate with
`uv run python -m modelog_contract.schemas`.
"""

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from modelog_contract.domain import Command
from modelog_contract.domain.events import Event
from modelog_contract.domain.monitoring import Signal

REPOSITORY_COPY = Path(__file__).resolve().parent / "schemas"


def contract() -> dict[str, dict[str, Any]]:
    return {
        "commands": TypeAdapter(Command).json_schema(),
        "events": TypeAdapter(Event).json_schema(),
        # What a serving instance publishes to modelog.signals for the sentinel.
        "signals": Signal.model_json_schema(),
    }


def as_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_repository_copy(directory: Path = REPOSITORY_COPY) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in contract().items():
        path = directory / f"{name}.schema.json"
        path.write_text(as_text(schema))
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_repository_copy():
        print(f"wrote {path}")
