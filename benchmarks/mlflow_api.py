"""MLflow's Model Registry REST API, answered by `mlflow server` (on PostgreSQL)
and by modelog, the same workload against both in one run, side by side.

    uv run python benchmarks/mlflow_api.py [--writes N] [--read-seconds S] [--clients 1,32,100]
                                           [--ops get-by-alias,...] [--keep-alive-only] [--compare URL]
                                           [--rounds N]
                                           [--mlflow-workers N]

Against the running stack (`make up`; its ports from MODELOG_* as every
command), and an `mlflow server` this script starts on --mlflow-port with a
database of its own (mlflow_bench) in the stack's PostgreSQL. MLflow talks to
PostgreSQL through psycopg2, which modelog does not depend on: the server runs
in a throwaway environment (`uv run --no-project --with mlflow==<this
environment's version> --with psycopg2-binary`), or under --mlflow-python.

For each client count (1, 32, 100), with keep-alive connections and with a new
connection per request:
- writes, each client on a model of its own, WRITES times: create a version
  (`model-versions/create`, a source in a bucket neither side has), move it to Staging
  (`transition-stage`), point an alias at it (`registered-models/alias`); driven
  from Python (a write waits for its decision, so the client is not what
  limits them): p50/p99 per operation and operations/s;
- reads, READ_SECONDS each: `get-latest-versions` (Staging),
  `registered-models/alias` (get by alias) and `get-download-uri`, driven by
  wrk (`apt-get install wrk`; load_generator.py says why not hey), so a Python
  client's CPU does not cap them: requests/s, p50/p99, and any answer that is
  not a 2xx.
--ops runs only the operations named (writes, get-latest-versions,
get-by-alias, get-download-uri; default all), and --keep-alive-only skips the
new-connection runs: to measure one read again without the rest.
--compare URL also reads through a second registrar of the same stack (one
started from another commit, say) in the same run, in rows marked "(compare)":
a before and after under the same load. --rounds N reads N times through each
registrar, the order swapped each round, and prints the medians: one run on a
loaded machine moves with others' work, the medians of alternating runs less.
Ratios are modelog / mlflow: above 1 for requests/s, below 1 for latencies
means modelog is faster. After each modelog read, the CPU its registrar and
projector spent per answer (from /proc, when the stack runs here). The goals (issue 13): reads at 32 clients at least
30x mlflow's requests/s with p99 under 20 ms; writes p50 within 2x of mlflow's.
"""

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from pathlib import Path
from urllib.parse import quote, urlsplit
from uuid import uuid4

import httpx
import load_generator
from load_generator import Request
from stack_cpu import spent_since, stack_cpu_s

from modelog_platform.adapters.postgres import connect
from modelog_platform.engines.mlflow import WITHOUT_JOBS
from modelog_platform.identity.dev import dev_token
from modelog_platform.settings import EngineEndpoints, ServicePorts

API = "/api/2.0/mlflow"
SOURCE = "s3://mlflow-bench/model"  # a bucket neither side has: recorded, not copied (modelog keeps it unverified)
DATABASE = "mlflow_bench"


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    headers: dict[str, str]
    authenticated: bool = False

    def client_headers(self, client: int) -> dict[str, str]:
        """Each writing client as a pipeline of its own: modelog limits each caller's write rate."""
        if not self.authenticated:
            return self.headers
        return {"Authorization": f"Bearer {dev_token(f'mlflow-bench-{client}', 'admin')}"}


# -- mlflow server on the stack's PostgreSQL ------------------------------------

async def mlflow_database() -> tuple[str, dict[str, str]]:
    """A database of mlflow's own in the stack's PostgreSQL: its SQLAlchemy URI
    (no password in it) and the libpq variables that log in."""
    login = EngineEndpoints().postgres()
    conn = await connect(login)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            await conn.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await conn.close()
    where = urlsplit(login.dsn)
    uri = (f"postgresql+psycopg2://{quote(login.role)}@{where.hostname}:{where.port}/{DATABASE}"
           f"?sslmode=verify-ca&sslrootcert={login.ca_file}")
    return uri, {"PGPASSWORD": login.password}


def start_mlflow(port: int, workers: int, python: str | None, scratch: Path) -> subprocess.Popen:
    uri, login = asyncio.run(mlflow_database())
    runner = [python] if python else ["uv", "run", "--no-project", "--with", f"mlflow=={installed_version('mlflow')}",
                                      "--with", "psycopg2-binary", "python"]
    argv = [*runner, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--backend-store-uri", uri,
            "--default-artifact-root", str(scratch / "artifacts")]
    log = (scratch / "mlflow.log").open("wb")
    server = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=scratch,
                              env={**os.environ, **login, **WITHOUT_JOBS}, start_new_session=True)
    deadline = time.monotonic() + 600  # a new database is migrated at the first start
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"mlflow server exited: see {scratch / 'mlflow.log'}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(1)
    stop(server)
    raise SystemExit(f"mlflow server not ready after 600 s: see {scratch / 'mlflow.log'}")


def stop(server: subprocess.Popen) -> None:
    """The server and what it started (uv, its workers, its job runner): its own session."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.pid, sent)
            server.wait(30)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


# -- writes, from Python -----------------------------------------------------------

def call(response: httpx.Response) -> dict:
    if response.status_code != 200:
        raise SystemExit(f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:300]}")
    return response.json()


async def write_client(target: Target, client: int, model: str, writes: int, keepalive: bool,
                       latencies: dict[str, list[float]]) -> None:
    limits = httpx.Limits(max_keepalive_connections=1 if keepalive else 0)
    async with httpx.AsyncClient(base_url=target.url + API, headers=target.client_headers(client), timeout=120,
                                 limits=limits) as http:
        for _ in range(writes):
            started = time.perf_counter()
            created = call(await http.post("/model-versions/create", json={"name": model, "source": SOURCE}))
            number = created["model_version"]["version"]
            moved = time.perf_counter()
            call(await http.post("/model-versions/transition-stage", json={
                "name": model, "version": number, "stage": "Staging", "archive_existing_versions": False}))
            aliased = time.perf_counter()
            call(await http.post("/registered-models/alias", json={"name": model, "alias": "latest-bench",
                                                                   "version": number}))
            done = time.perf_counter()
            latencies["create version"].append(moved - started)
            latencies["transition"].append(aliased - moved)
            latencies["set alias"].append(done - aliased)


async def writes(target: Target, prefix: str, clients: int, writes_each: int, keepalive: bool) -> dict:
    models = [f"{prefix}-w{clients}-{'ka' if keepalive else 'new'}-{i}" for i in range(clients)]
    async with httpx.AsyncClient(base_url=target.url + API, headers=target.headers, timeout=120) as http:
        for model in models:
            call(await http.post("/registered-models/create", json={"name": model}))
    latencies: dict[str, list[float]] = {"create version": [], "transition": [], "set alias": []}
    started = time.perf_counter()
    await asyncio.gather(*(write_client(target, i, m, writes_each, keepalive, latencies) for i, m in enumerate(models)))
    elapsed = time.perf_counter() - started
    return {op: {"rate": len(values) / elapsed, "p50": percentile(values, 50), "p99": percentile(values, 99),
                 "errors": 0} for op, values in latencies.items()}


def percentile(values: list[float], p: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


# -- reads, with wrk ---------------------------------------------------------------

def read_model(target: Target, model: str, versions: int = 5) -> None:
    """A model with a few versions, the last in Staging under an alias."""
    with httpx.Client(base_url=target.url + API, headers=target.headers, timeout=120) as http:
        call(http.post("/registered-models/create", json={"name": model}))
        for _ in range(versions):
            number = call(http.post("/model-versions/create", json={"name": model, "source": SOURCE}))[
                "model_version"]["version"]
        call(http.post("/model-versions/transition-stage", json={
            "name": model, "version": number, "stage": "Staging", "archive_existing_versions": False}))
        call(http.post("/registered-models/alias", json={"name": model, "alias": "champion", "version": number}))


def read_requests(target: Target, model: str) -> dict[str, Request]:
    """Each read, as MLflow's client sends it."""
    base = target.url + API
    return {
        "get-latest-versions": Request(f"{base}/registered-models/get-latest-versions",
                                       target.headers | {"Content-Type": "application/json"}, "POST",
                                       f'{{"name": "{model}", "stages": ["Staging"]}}'),
        "get by alias": Request(f"{base}/registered-models/alias?name={model}&alias=champion", target.headers),
        "get-download-uri": Request(f"{base}/model-versions/get-download-uri?name={model}&version=5",
                                    target.headers),
    }


OPS = ("writes", "get-latest-versions", "get-by-alias", "get-download-uri")


def read(request: Request, seconds: float, clients: int, keepalive: bool) -> dict:
    """wrk's figures, times in seconds as the writes' are."""
    f = load_generator.drive(request, clients, seconds, keepalive)
    return {"rate": f.rate, "p50": f.p50 / 1000, "p99": f.p99 / 1000, "answered": f.answered, "errors": f.errors}


def read_with_cpu(request: Request, seconds: float, clients: int, keepalive: bool) -> dict:
    """wrk's figures, and the CPU the local stack's busiest registrar instance
    (the one the reads went through) and its projector spent per answer
    (`registrar_us`, `projector_us`): a figure other work on the machine
    moves far less than requests/s."""
    before = stack_cpu_s()
    figures = read(request, seconds, clients, keepalive)
    spent = spent_since(before)
    registrar = max((s for name, s in spent.items() if name.split("-")[0] == "registrar"), default=None)
    if registrar is not None and figures["answered"]:
        per = 1e6 / figures["answered"]
        figures |= {"registrar_us": registrar * per, "projector_us": spent.get("projector", 0) * per}
    return figures


def cpu_note(figures: dict) -> str:
    if "registrar_us" not in figures:
        return ""
    return f" CPU/request: registrar {figures['registrar_us']:.0f} us, projector {figures['projector_us']:.0f} us"


def medians(runs: list[dict]) -> dict:
    keys = set.intersection(*(set(k for k, v in run.items() if isinstance(v, float)) for run in runs))
    return {"errors": sum(run["errors"] for run in runs), **{k: statistics.median(run[k] for run in runs) for k in keys}}


# -- the run -----------------------------------------------------------------------

def row(op: str, clients: int, keepalive: bool, theirs: dict, ours: dict) -> str:
    def side(f: dict) -> str:
        errors = f" ({f['errors']} errors)" if f["errors"] else ""
        return f"{f['rate']:9.1f}/s {f['p50'] * 1000:8.1f} {f['p99'] * 1000:8.1f}{errors:>12}"
    rate = ours["rate"] / theirs["rate"] if theirs["rate"] else float("nan")
    return (f"{op:<20} {clients:>4} {'keep-alive' if keepalive else 'new conn':<10} | {side(theirs)} | {side(ours)} | "
            f"{rate:7.2f}x {ours['p50'] / theirs['p50']:6.2f} {ours['p99'] / theirs['p99']:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=20, help="writes per client, of each operation")
    parser.add_argument("--read-seconds", type=float, default=5.0, help="seconds of each read, per run of wrk")
    parser.add_argument("--clients", default="1,32,100")
    parser.add_argument("--mlflow-port", type=int, default=15500)
    parser.add_argument("--mlflow-workers", type=int, default=4, help="mlflow server's own default")
    parser.add_argument("--mlflow-python", help="a python with mlflow and psycopg2 (default: a throwaway uv env)")
    parser.add_argument("--ops", default=",".join(OPS), help="the operations to run, of " + ",".join(OPS))
    parser.add_argument("--keep-alive-only", action="store_true", help="skip the runs with a new connection each")
    parser.add_argument("--compare", help="a second registrar of the same stack to read through, row by row")
    parser.add_argument("--rounds", type=int, default=1, help="reads through each registrar, alternating; medians")
    args = parser.parse_args()
    load_generator.binary()  # before starting anything: wrk is there
    counts = [int(c) for c in args.clients.split(",")]
    ops = set(args.ops.split(","))
    if unknown := ops - set(OPS):
        raise SystemExit(f"no operation {', '.join(sorted(unknown))}: the operations are {', '.join(OPS)}")
    scratch = Path(tempfile.mkdtemp(prefix="mlflow-bench-"))
    ports = ServicePorts()
    # Stopped with SIGTERM, still stop the server: its own session outlives this process.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    server = start_mlflow(args.mlflow_port, args.mlflow_workers, args.mlflow_python, scratch)
    try:
        mlflow = Target("mlflow", f"http://127.0.0.1:{args.mlflow_port}", {})
        modelog = Target("modelog", ports.url("registrar"),
                         {"Authorization": f"Bearer {dev_token('mlflow-bench', 'admin')}"}, authenticated=True)
        compare = [Target("compare", args.compare.rstrip("/"), modelog.headers)] if args.compare else []
        run = f"mlflow-bench-{uuid4().hex[:6]}"
        print(f"mlflow server {installed_version('mlflow')} ({args.mlflow_workers} workers, PostgreSQL) vs modelog "
              f"at {modelog.url}; {args.writes} writes per client, {args.read_seconds:g} s per read; cores: "
              f"{os.cpu_count()}, load {os.getloadavg()[0]:.1f}", flush=True)
        print(f"{'':<37} | {'mlflow: rate, p50 ms, p99 ms':^42} | {'modelog: rate, p50 ms, p99 ms':^42} | "
              "modelog/mlflow: rate p50 p99")
        for target in (mlflow, modelog):
            read_model(target, f"{run}-read")
        for clients in counts:
            for keepalive in (True,) if args.keep_alive_only else (True, False):
                if "writes" in ops:
                    figures = {t.name: asyncio.run(writes(t, run, clients, args.writes, keepalive))
                               for t in (mlflow, modelog)}
                    for op in figures["mlflow"]:
                        print(row(op, clients, keepalive, figures["mlflow"][op], figures["modelog"][op]), flush=True)
                reads = {t.name: read_requests(t, f"{run}-read") for t in (mlflow, modelog, *compare)}
                for op in (op for op in reads["mlflow"] if op.replace(" ", "-") in ops):
                    theirs = read(reads["mlflow"][op], args.read_seconds, clients, keepalive)
                    runs: dict[str, list[dict]] = {t.name: [] for t in (*compare, modelog)}
                    for turn in range(args.rounds):  # the compare just before modelog's own run, then after
                        for target in (*compare, modelog) if turn % 2 == 0 else (modelog, *compare):
                            label = op if target is modelog else f"{op} (compare)"
                            figures = read_with_cpu(reads[target.name][op], args.read_seconds, clients, keepalive)
                            runs[target.name].append(figures)
                            print(row(label, clients, keepalive, theirs, figures) + cpu_note(figures), flush=True)
                    for name, done in runs.items() if args.rounds > 1 else ():
                        label = f"{op} (median{', compare' if name != 'modelog' else ''})"
                        print(row(label, clients, keepalive, theirs, medians(done)) + cpu_note(medians(done)), flush=True)
    finally:
        stop(server)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
