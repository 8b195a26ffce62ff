"""The test's side of the serving story's process (serving_story_process.py):
start it, read the JSON lines it says, wait for one that shows a condition,
and stop it for its final figures.

Apart from the test so that the story reads as the story, not as pipes and
threads.
"""

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

NOW_ROUTING = "now routing "


@dataclass(frozen=True)
class Said:
    index: int
    line: dict


def eventually(what: str, condition: Callable[[], object], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"never: {what} (within {timeout_s:.0f} s)"
        time.sleep(0.2)


class ServingProcess:
    """`python -m tests.e2e.serving_story_process MODEL`, and what it said so far."""

    def __init__(self, model: str, env: dict[str, str], cwd: Path):
        self.process = subprocess.Popen([sys.executable, "-m", "tests.e2e.serving_story_process", model],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=cwd)
        self.lines: list[dict] = []
        self._said = threading.Condition()
        self._ended = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            with self._said:
                self.lines.append(json.loads(raw))
                self._said.notify_all()
        with self._said:
            self._ended = True
            self._said.notify_all()

    def wait(self, what: str, matches: Callable[[dict], bool], timeout_s: float, after: int = 0) -> Said:
        """The first line at or after `after` that `matches`; fails if the process ends or time runs out."""
        deadline = time.monotonic() + timeout_s
        seen = after
        with self._said:
            while True:
                for index in range(seen, len(self.lines)):
                    if matches(self.lines[index]):
                        return Said(index, self.lines[index])
                seen = max(seen, len(self.lines))
                left = deadline - time.monotonic()
                assert not self._ended, f"the serving process ended before: {what}; last said {self.lines[-3:]}"
                assert left > 0, f"never: {what} (within {timeout_s:.0f} s); last said {self.lines[-3:]}"
                self._said.wait(min(left, 1.0))

    def finish(self) -> dict:
        """Close its stdin (its signal to stop) and return its final figures."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        final = self.wait("its final figures", lambda line: line["kind"] == "final", timeout_s=5)
        assert self.process.returncode == 0, self.process.returncode
        return final.line

    def swaps(self) -> dict[str, list]:
        """Each watcher's swaps in order: the split watcher's routing, the Production watcher's version."""
        events = [line for line in self.lines if line["kind"] == "watcher" and line["event"] == "swapped"]
        return {"online": [e["detail"].removeprefix(NOW_ROUTING) for e in events if e["watcher"] == "online"],
                "batch": [e["version"] for e in events if e["watcher"] == "batch"]}
