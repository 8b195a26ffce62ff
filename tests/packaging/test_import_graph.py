"""The import graph: no cycles, and the layering the packages promise.

The client (`modelog`) imports neither the contract nor the platform, so it
installs alone on Python 3.10-3.13; the contract imports nothing of the
platform, the client or a service, so an auditor can verify a log copy with it
alone; no shared package imports a service. Function-level imports count: an
import hidden inside a function is still a dependency.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "modelog": ROOT / "shared/client/modelog",
    "modelog_contract": ROOT / "shared/contract/modelog_contract",
    "modelog_platform": ROOT / "shared/platform/modelog_platform",
    "registrar": ROOT / "services/registrar/registrar",
    "promoter": ROOT / "services/promoter/promoter",
    "projector": ROOT / "services/projector/projector",
    "auditor": ROOT / "services/auditor/auditor",
}
SERVICES = {"registrar", "promoter", "projector", "auditor", "sentinel"}
# What each shared package may import from the project (itself aside).
ALLOWED = {
    "modelog": set(),
    "modelog_contract": set(),
    "modelog_platform": {"modelog", "modelog_contract"},
}


def modules() -> dict[str, Path]:
    found = {}
    for package, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `name` imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from package import submodule` imports the submodule.
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                       for alias in node.names]
        else:
            continue
        for target in targets:
            # `import a.b.c` depends on the deepest project module it names.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read_from_the_source():
    edges = graph()
    assert "modelog_contract.domain.decider" in edges["modelog_contract.domain"]
    assert "modelog_platform.engines.procs" in edges["modelog_platform.engines.base"]


def test_no_module_imports_itself_back_through_others():
    assert cycles(graph()) == []


def test_cycles_are_found_when_there_are_some():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_shared_package_imports_only_what_it_may(package):
    outside = {
        f"{module} imports {target}"
        for module, targets in graph().items() if module.split(".")[0] == package
        for target in targets
        if target.split(".")[0] not in ALLOWED[package] | {package}
    }
    assert outside == set()


def test_no_shared_package_imports_a_service():
    edges = graph()
    assert not {(m, t) for m, ts in edges.items() for t in ts
                if m.split(".")[0] not in SERVICES and t.split(".")[0] in SERVICES}
