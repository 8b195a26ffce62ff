"""More than one instance of a service on the test stack: started beside the
stack's own (named `<service>-<n>`, on the first one's port + 50 * (n - 1)),
asked which partitions each holds, and stopped afterwards with the stack's
own instance running again and holding everything."""

import asyncio
import time
from collections.abc import Callable

import httpx

from modelog_platform import services
from modelog_platform.adapters.log_reader import model_partition
from modelog_platform.engines import procs
from modelog_platform.settings import LocalStack, ServicePorts

PARTITIONS = 12
REBALANCE_WAIT_S = 180  # a dead member is noticed after its session timeout; generous for a loaded machine


def instance_name(service: str, n: int) -> str:
    return service if n == 1 else f"{service}-{n}"


def ports_of(stack: ServicePorts, service: str, n: int) -> ServicePorts:
    port = getattr(stack, f"{service}_port") + 50 * (n - 1)
    return stack.model_copy(update={f"{service}_port": port})


def start(local: LocalStack, stack: ServicePorts, service: str, n: int, env: dict[str, str] | None = None) -> None:
    """Start instance n of `service` (no-op if it runs), ready when this returns."""
    ports = ports_of(stack, service, n)
    port = str(getattr(ports, f"{service}_port"))
    services.start(instance_name(service, n), local, env={f"MODELOG_{service.upper()}_PORT": port, **(env or {})})
    services.wait_ready(instance_name(service, n), local, ports, timeout_s=180)


def stop_added(local: LocalStack, stack: ServicePorts, names: list[str]) -> None:
    """Stop the instances `names`; return once the stack's own promoter decides
    every partition again. Its rebalance and restore take seconds after the
    others leave, and the next test's writes would wait on them."""
    for name in names:
        services.stop(name, local)
    asyncio.run(wait_for_shares({"promoter": stack.url("promoter")}, lambda s: s["promoter"] == set(range(PARTITIONS)),
                                "every partition back with the stack's own promoter"))


def print_logs(local: LocalStack, names: list[str], lines: int = 60) -> None:
    for name in names:
        print(f"--- {name} (last lines) ---\n{procs.log_tail(services.log_path(local, name), lines)}")


async def promoter_partitions(url: str) -> set[int] | None:
    """The partitions a promoter decides, or None while it is not answering."""
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{url}/v1/status", timeout=5)
            return set(response.json()["partitions"]) if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError):
        return None


async def wait_for_shares(urls: dict[str, str], want: Callable[[dict[str, set[int]]], bool], what: str,
                          partitions_of=promoter_partitions) -> dict[str, set[int]]:
    """Until every instance answers and `want(shares)` holds; the shares then."""
    deadline = time.monotonic() + REBALANCE_WAIT_S
    while True:
        shares = {name: await partitions_of(url) for name, url in urls.items()}
        if None not in shares.values() and want(shares):  # type: ignore[arg-type]
            return shares  # type: ignore[return-value]
        assert time.monotonic() < deadline, f"after {REBALANCE_WAIT_S}s, not {what}: {shares}"
        await asyncio.sleep(0.25)


def split_among_all(shares: dict[str, set[int]]) -> bool:
    """Every instance holds some partitions, none twice, all of them covered."""
    held = [p for share in shares.values() for p in share]
    return all(shares.values()) and len(held) == len(set(held)) == PARTITIONS


def model_on(partitions: set[int], prefix: str) -> str:
    """A model name whose commands land on one of `partitions`."""
    for i in range(10_000):
        if model_partition(name := f"{prefix}-{i}", PARTITIONS) in partitions:
            return name
    raise AssertionError(f"no model name found on partitions {partitions}")
