"""Every import is declared by the package that makes it.

A distribution that imports a library it does not declare works only while
something else happens to install that library; a user installing the client
alone, or a service image, finds out at run time. Each package's third-party
imports (function-level ones too) must map to a distribution its own
pyproject.toml lists.
"""

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECTS = {
    "shared/client": "modelog",
    "shared/contract": "modelog_contract",
    "shared/platform": "modelog_platform",
    "services/registrar": "registrar",
    "services/promoter": "promoter",
    "services/projector": "projector",
    "services/auditor": "auditor",
}


def top_level_imports(package_dir: Path) -> set[str]:
    names = set()
    for path in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def declared(project: Path) -> set[str]:
    spec = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    requirements = list(spec.get("dependencies", []))
    for extra in spec.get("optional-dependencies", {}).values():
        requirements += extra
    return {canonicalize_name(Requirement(r).name) for r in requirements}


@pytest.mark.parametrize("project", sorted(PROJECTS))
def test_every_third_party_import_is_declared(project):
    package = PROJECTS[project]
    providers = packages_distributions()
    undeclared = set()
    for name in top_level_imports(ROOT / project / package):
        if name == package or name in sys.stdlib_module_names or name == "__future__":
            continue
        distributions = {canonicalize_name(d) for d in providers.get(name, [name])}
        if not distributions & declared(ROOT / project):
            undeclared.add(f"{name} (from {', '.join(sorted(distributions))})")
    assert undeclared == set(), f"{project}/pyproject.toml does not declare what {package} imports"


def test_the_client_depends_on_no_server_library():
    assert declared(ROOT / "shared/client") == {"httpx", "typer", "rich"}
