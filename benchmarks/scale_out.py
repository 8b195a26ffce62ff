"""What one more instance buys: serving lookups/s with 1, 2 and 3 projectors,
and decisions/s with 1, 2 and 3 promoters, against a running local stack.

    uv run python benchmarks/scale_out.py [SECONDS] [CLIENTS] [COMMANDS] [MODELS]

Lookups: a model with a version in Staging (as serving_lookups.py makes it);
then, for 1, 2 and 3 projector instances, CLIENTS (default 32) keep-alive
clients driven by wrk (`apt-get install wrk`; load_generator.py) for
SECONDS (default 5) against the stage lookup, split evenly over the
instances, one wrk per instance at once, after a second of warm-up: lookups/s
summed, and each wrk's p99.
Decisions: for 1, 2 and 3 promoter instances, a burst of COMMANDS (default
2,000) signed registrations over MODELS (default 100) models, published at
once (promoter_throughput.py's phase): decided commands/s from the first send
to the last outcome. The extra instances are the stack's own services started
beside it (`projector-2` on the projector's port + 50, and so on), stopped at
the end. Each figure is printed with the load average: on a machine of two
cores shared with the stack and the load generator, more processes share the
same CPU, and that is what the figures show.
"""

import argparse
import asyncio
import os
import time

import httpx
import load_generator
from load_generator import Request
from promoter_throughput import make_commands, run_phase
from serving_lookups import as_serving, prepare

from modelog_platform import services
from modelog_platform.settings import EngineEndpoints, LocalStack, ServicePorts


def instance(service: str, n: int) -> str:
    return service if n == 1 else f"{service}-{n}"


def ports_of(ports: ServicePorts, service: str, n: int) -> ServicePorts:
    return ports.model_copy(update={f"{service}_port": getattr(ports, f"{service}_port") + 50 * (n - 1)})


def start(stack: LocalStack, ports: ServicePorts, service: str, n: int) -> None:
    mine = ports_of(ports, service, n)
    services.start(instance(service, n), stack,
                   env={f"MODELOG_{service.upper()}_PORT": str(getattr(mine, f"{service}_port"))})
    services.wait_ready(instance(service, n), stack, mine, timeout_s=300)


def load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def reads_at_once(urls: list[str], clients: int, seconds: float) -> tuple[float, list[float], int]:
    """One wrk per URL, all at once, the clients split among them: summed
    requests/s, each one's p99 (ms), and answers other than 2xx."""
    runs = [load_generator.start(Request(url, as_serving()), max(1, clients // len(urls)), seconds) for url in urls]
    figures = [load_generator.figures_of(run) for run in runs]
    return sum(f.rate for f in figures), [f.p99 for f in figures], sum(f.errors for f in figures)


async def promoter_shares(ports: ServicePorts, count: int) -> list[set[int]]:
    """Until `count` promoters each decide some partitions, none twice, all twelve covered."""
    deadline = time.monotonic() + 300
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            try:
                shares = [set((await client.get(ports_of(ports, "promoter", n).url("promoter") + "/v1/status"))
                              .json()["partitions"]) for n in range(1, count + 1)]
                held = [p for share in shares for p in share]
                if all(shares) and len(held) == len(set(held)) == EngineEndpoints().topic_partitions:
                    return shares
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            assert time.monotonic() < deadline, f"{count} promoters never split the partitions"
            await asyncio.sleep(0.5)


async def lookups(stack: LocalStack, ports: ServicePorts, clients: int, seconds: float) -> None:
    model = await prepare(ports)
    for count in (1, 2, 3):
        if count > 1:
            await asyncio.to_thread(start, stack, ports, "projector", count)
        urls = [f"{ports_of(ports, 'projector', n).url('projector')}/v1/models/{model}/stages/Staging"
                for n in range(1, count + 1)]
        # A second not counted: an instance's first answers verify its callers'
        # tokens and open its connections, a start-up cost, not what it serves.
        await asyncio.to_thread(reads_at_once, urls, clients, 1)
        rate, p99s, errors = await asyncio.to_thread(reads_at_once, urls, clients, seconds)
        print(f"lookups, {count} projector(s), {clients} clients: {rate:,.0f}/s; p99 per instance "
              f"{', '.join(f'{p:.1f}' for p in p99s)} ms; {errors} not answered 2xx; {load()}", flush=True)


async def decisions(ports: ServicePorts, stack: LocalStack, commands: int, models: int) -> None:
    for count in (1, 2, 3):
        if count > 1:
            await asyncio.to_thread(start, stack, ports, "promoter", count)
        shares = await promoter_shares(ports, count)
        elapsed, _ = await run_phase(EngineEndpoints(), make_commands(commands, models), rate=None)
        print(f"decisions, {count} promoter(s) holding {[len(s) for s in shares]} partitions: "
              f"{commands / elapsed:,.0f}/s ({commands} commands in {elapsed:.1f} s); {load()}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("seconds", nargs="?", type=float, default=5.0)
    parser.add_argument("clients", nargs="?", type=int, default=32)
    parser.add_argument("commands", nargs="?", type=int, default=2_000)
    parser.add_argument("models", nargs="?", type=int, default=100)
    args = parser.parse_args()
    load_generator.binary()  # before starting anything: wrk is there
    stack, ports = LocalStack(), ServicePorts()
    print(f"scale-out against the stack in {stack.home}; {os.cpu_count()} cores; {load()}", flush=True)
    try:
        asyncio.run(lookups(stack, ports, args.clients, args.seconds))
        asyncio.run(decisions(ports, stack, args.commands, args.models))
    finally:
        for name in ("projector-3", "projector-2", "promoter-3", "promoter-2"):
            services.stop(name, stack)


if __name__ == "__main__":
    main()
