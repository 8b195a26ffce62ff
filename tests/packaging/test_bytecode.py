"""The environment `make bootstrap` installs holds every module compiled.

A service started where Python may not write bytecode (PYTHONDONTWRITEBYTECODE,
a fresh container from an image) compiles each module it imports, on every
start: that doubled a promoter's restart to deciding. So bootstrap, and the
image, compile the installed packages and modelog's own modules; the suite
runs on what bootstrap installed (`make test`), and checks it here.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What every service imports before it can start, and so waits for at each start.
IMPORTED_AT_START = ["aiokafka", "pydantic", "pydantic_core", "pydantic_settings", "structlog", "minio",
                     "cryptography", "jwt", "fastapi", "uvicorn", "asyncpg", "rich"]


def uncompiled(sources: list[Path]) -> list[Path]:
    """The sources whose bytecode is missing or older than the source."""
    missing = []
    for source in sources:
        cached = Path(importlib.util.cache_from_source(str(source)))
        if not cached.exists() or cached.stat().st_mtime < source.stat().st_mtime:
            missing.append(source)
    return missing


def test_modelogs_own_modules_are_compiled():
    sources = [p for top in ("shared", "services") for p in (ROOT / top).rglob("*.py")]
    assert sources
    missing = uncompiled(sources)
    assert not missing, (f"{len(missing)} of modelog's modules have no current bytecode, e.g. "
                         f"{[str(p.relative_to(ROOT)) for p in missing[:5]]}: run `make bootstrap`")


@pytest.mark.parametrize("package", IMPORTED_AT_START)
def test_the_packages_services_import_at_start_are_compiled(package):
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None, f"{package} is not installed"
    sources = list(Path(spec.origin).parent.rglob("*.py"))
    assert Path(spec.origin).parent.is_relative_to(Path(sys.prefix)), "installed in the environment"
    missing = uncompiled(sources)
    assert not missing, (f"{len(missing)} of {package}'s {len(sources)} modules have no bytecode, e.g. "
                         f"{[str(p) for p in missing[:3]]}: run `make bootstrap`")
