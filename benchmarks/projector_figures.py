"""The projector's figures in one run, against a running stack (`make up`):
serving lookups (capacity and latency at fixed rates, 100 clients), promotion
-> change feed and -> lookup latency, and rebuild events/s. Each is its own
script (see them for what they do and their arguments); this runs them one
after another with the defaults, so the figures come from one quiet machine.
(Not named projector.py: beside the scripts it would shadow the `projector` package.)

    uv run python benchmarks/projector_figures.py
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
RUNS = [
    ("serving lookups: 100 keep-alive clients", ["serving_lookups.py", "20000", "100"]),
    ("promotion -> change feed and -> lookup", ["change_feed_latency.py", "100"]),
    ("rebuild: the fold against per-event SQL", ["rebuild_speed.py", "100000", "10000"]),
]

if __name__ == "__main__":
    failed = []
    for title, (script, *args) in RUNS:
        print(f"\n== {title}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script), *args]).returncode != 0:
            failed.append(script)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")
