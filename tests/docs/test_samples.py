"""The samples in README.md and docs/**/*.md run against the test stack, as a
reader would run them.

A fenced block's info string says what it is:

- `sh`: run with bash (errexit, pipefail); must exit 0.
- `sh exit=N`: must exit N (a refusal shown on purpose).
- `sh no-run <reason>`: shown, not run. Kept few; today:
  `make demo` and `make up`/`down`/`clean` with `source .venv/bin/activate`
  (the test has its own stack up, and puts .venv/bin on PATH itself),
  `make test` (it runs this test), `pip install ./shared/client` (it would
  change the environment the tests run in), `docker compose ...` (needs a
  Docker engine), the benchmark scripts (each loads the machine for
  minutes), and in adding-an-event-type.md `uv run python -m
  modelog_contract.schemas` (it rewrites the repository's schema files) and
  `make test`.
- `python`: run with the venv's python; must exit 0.
- `python no-run <reason>`: an excerpt of the code, shown, not run.
- `text`, `console`, `json`, `yaml`: output or data shown to the reader.

Every block of one file runs in order, in one working directory, and what a
block exports (and where it `cd`s) carries on to the next, as in a reader's
terminal. So the first-five-minutes story builds on itself.

The docs use plain names and the local stack's URLs. Before running, the test
gives each file's model names a suffix of its own (a fresh model per run,
although the stack outlives one file) and points the default service URLs
at the test stack's ports.
"""

import os
import re
import shlex
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.engines

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
RUN, SHOWN = {"sh", "python"}, {"text", "console", "json", "yaml"}
# The names the docs' samples give their models: one per page, so that a reader
# can run any page after `make demo` (which makes fraud-detector) and the others.
MODEL_NAMES = ("fraud-detector", "churn-predictor", "credit-scorer", "search-ranker", "loan-approval")
DEFAULT_PORTS = {"registrar": 8000, "promoter": 8001, "projector": 8002, "auditor": 8003}
FENCE = re.compile(r"^(?P<fence>```+)(?P<info>.*)$")
BLOCK_TIMEOUT_S = 180


@dataclass(frozen=True)
class Sample:
    path: Path
    line: int
    language: str
    options: tuple[str, ...]
    code: str

    @property
    def runs(self) -> bool:
        return self.language in RUN and "no-run" not in self.options

    @property
    def expected_exit(self) -> int:
        for option in self.options:
            if option.startswith("exit="):
                return int(option.removeprefix("exit="))
        return 0

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def samples(path: Path) -> list[Sample]:
    """Every fenced block of a Markdown file, in order."""
    found, lines = [], path.read_text().splitlines()
    index = 0
    while index < len(lines):
        opened = FENCE.match(lines[index])
        if not opened:
            index += 1
            continue
        fence, info = opened["fence"], opened["info"].split()
        end = index + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        language, options = (info[0], tuple(info[1:])) if info else ("", ())
        found.append(Sample(path, index + 1, language, options, "\n".join(lines[index + 1:end]) + "\n"))
        index = end + 1
    return found


def test_every_block_says_whether_it_runs():
    """A block without a known info string would be neither run nor meant as output."""
    unknown = [f"{s.where()}: ```{s.language} {' '.join(s.options)}".rstrip()
               for path in DOCUMENTS for s in samples(path)
               if s.language not in RUN | SHOWN
               or ("no-run" in s.options and len(s.options) < 2)]  # no-run needs its reason
    assert not unknown, "blocks need sh, python, text, console, json or yaml (no-run with a reason):\n" + "\n".join(unknown)


LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def test_links_stay_in_the_repository_and_resolve():
    """A clone has only the repository: every link is relative and names a file that exists."""
    broken = []
    for path in DOCUMENTS:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for found in LINK.finditer(line):
                target = found["target"].split("#")[0]
                if "://" in found["target"] or not (path.parent / target).resolve().exists():
                    broken.append(f"{path.relative_to(ROOT)}:{number}: {found['target']}")
    assert not broken, "links outside the repository or to nothing:\n" + "\n".join(broken)


class ReaderSession:
    """One reader's terminal for one file: a working directory, and the
    variables each block exports, carried to the next block."""

    def __init__(self, workdir: Path, environment: dict[str, str], rewrite):
        self.workdir, self.rewrite = workdir, rewrite
        self.state, self.cwd = workdir / ".exported.sh", workdir / ".cwd"
        self.environment = environment
        self.state.write_text("")
        self.cwd.write_text(str(workdir))

    def run(self, sample: Sample) -> subprocess.CompletedProcess:
        code = self.rewrite(sample.code)
        if sample.language == "python":
            return subprocess.run([sys.executable, "-c", code], cwd=self.cwd.read_text().strip(),
                                  env=self.exported(), capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S)
        script = (f"source {shlex.quote(str(self.state))}\n"
                  f"cd {shlex.quote(self.cwd.read_text().strip())}\n"
                  f"trap 'export -p > {shlex.quote(str(self.state))}; pwd > {shlex.quote(str(self.cwd))}' EXIT\n"
                  "set -eo pipefail\n" + code)
        return subprocess.run(["bash", "-c", script], env=self.environment, capture_output=True, text=True,
                              timeout=BLOCK_TIMEOUT_S)

    def exported(self) -> dict[str, str]:
        """The environment a block after the last `sh` block sees."""
        dump = subprocess.run(["bash", "-c", f"source {shlex.quote(str(self.state))}; env -0"],
                              env=self.environment, capture_output=True, check=True)
        return dict(item.split("=", 1) for item in dump.stdout.decode().split("\0") if "=" in item)


def rewriter(ports, suffix: str):
    """The docs' plain model names made unique, their default URLs the test stack's."""
    names = re.compile(r"\b(" + "|".join(map(re.escape, MODEL_NAMES)) + r")\b")
    urls = {f"http://127.0.0.1:{port}": ports.url(service) for service, port in DEFAULT_PORTS.items()}

    def rewrite(code: str) -> str:
        code = names.sub(lambda found: f"{found[1]}-{suffix}", code)
        for default, test_url in urls.items():
            code = code.replace(default, test_url)
        return code
    return rewrite


SAMPLED = [path for path in DOCUMENTS if any(s.runs for s in samples(path))]


@pytest.mark.parametrize("path", SAMPLED, ids=[str(p.relative_to(ROOT)) for p in SAMPLED])
def test_the_samples_run_as_written(stack, path, tmp_path):
    runnable = [s for s in samples(path) if s.runs]
    environment = dict(os.environ)
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
    environment.pop("MODELOG_TOKEN", None)  # the docs tell the reader to get one
    session = ReaderSession(tmp_path, environment, rewriter(stack, uuid.uuid4().hex[:8]))
    for sample in runnable:
        done = session.run(sample)
        assert done.returncode == sample.expected_exit, (
            f"{sample.where()} exited {done.returncode}, expected {sample.expected_exit}\n"
            f"--- sample ---\n{sample.code}--- stdout ---\n{done.stdout}--- stderr ---\n{done.stderr}")
