"""HTTP load for the read benchmarks (mlflow_api.py, scale_out.py), driven by
wrk (Debian's `apt-get install wrk`).

Why wrk: on two cores the load generator's CPU comes out of the servers'. wrk
is C on epoll and spent about a fifth of the CPU a request that hey (Go)
spent against the same registrar read on this machine, so the figures say
more about the server and less about the client driving it.
"""

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
ANSWERED = re.compile(r"^\s+(\d+) requests in", re.M)
PERCENTILE = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\b", re.M)
NOT_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
TO_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
TIMEOUT = "30s"


@dataclass(frozen=True)
class Request:
    url: str
    headers: dict[str, str]
    method: str = "GET"
    body: str | None = None


@dataclass(frozen=True)
class Figures:
    rate: float  # answers a second
    p50: float  # ms
    p99: float  # ms
    answered: int
    errors: int  # answers other than 2xx/3xx, and broken connections


def binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("no wrk on PATH: apt-get install wrk")
    return found


@dataclass(frozen=True)
class Run:
    process: subprocess.Popen
    script: Path


def start(request: Request, clients: int, seconds: float, keepalive: bool = True) -> Run:
    """wrk asking `request` from `clients` connections for `seconds` (whole ones); `keepalive`
    False asks the server to close each connection after its answer."""
    headers = dict(request.headers) | ({} if keepalive else {"Connection": "close"})
    script = Path(tempfile.mkstemp(prefix="wrk-", suffix=".lua")[1])
    # The script sets what -H cannot: the method and the body.
    script.write_text(f"wrk.method = {_lua(request.method)}\n"
                      + (f"wrk.body = {_lua(request.body)}\n" if request.body is not None else ""))
    # A request unanswered after TIMEOUT counts as an error (wrk's own default is 2 s).
    argv = [binary(), "--latency", "--timeout", TIMEOUT, "-t", str(min(2, clients)), "-c", str(clients),
            "-d", f"{max(1, round(seconds))}s",
            "-s", str(script), *(a for name, value in headers.items() for a in ("-H", f"{name}: {value}")),
            request.url]
    return Run(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), script)


def figures_of(run: Run) -> Figures:
    out = run.process.communicate()[0]
    run.script.unlink(missing_ok=True)
    if run.process.returncode != 0 or not (rate := RATE.search(out)):
        raise RuntimeError(f"wrk failed ({run.process.returncode}): {out[-500:]}")
    percentiles = {p: float(v) * TO_MS[unit] for p, v, unit in PERCENTILE.findall(out)}
    answered = ANSWERED.search(out)
    socket_errors = SOCKET_ERRORS.search(out)
    not_2xx = NOT_2XX.search(out)
    return Figures(rate=float(rate.group(1)), p50=percentiles.get("50", float("nan")),
                   p99=percentiles.get("99", float("nan")), answered=int(answered.group(1)) if answered else 0,
                   errors=(int(not_2xx.group(1)) if not_2xx else 0)
                   + (sum(int(n) for n in socket_errors.groups()) if socket_errors else 0))


def drive(request: Request, clients: int, seconds: float, keepalive: bool = True) -> Figures:
    return figures_of(start(request, clients, seconds, keepalive))


def _lua(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
