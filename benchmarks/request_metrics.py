"""What the request metrics (modelog_platform.metrics.RequestMetrics) cost
each HTTP request: the CPU of an ASGI app answering a tiny body, bare and
behind the middleware, in one process with no network, so only the
middleware's own work differs. Each side runs twice, alternating.

    uv run python benchmarks/request_metrics.py [REQUESTS]    # default 100000
"""

import asyncio
import sys
import time

from modelog_platform.metrics import RequestMetrics

SCOPE = {"type": "http", "path": "/api/2.0/mlflow/model-versions/get-download-uri", "method": "GET",
         "route_template": "/api/2.0/mlflow/model-versions/get-download-uri"}


async def app(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def receive() -> dict:
    return {"type": "http.request"}


async def send(message) -> None:
    pass


async def answer(asgi, requests: int) -> None:
    for _ in range(requests):
        await asgi(dict(SCOPE), receive, send)


def main(requests: int = 100_000) -> None:
    for _ in range(2):
        for name, asgi in (("bare app", app), ("behind RequestMetrics", RequestMetrics(app))):
            started = time.process_time()
            asyncio.run(answer(asgi, requests))
            print(f"{name:>22}: {1e6 * (time.process_time() - started) / requests:.2f} µs of CPU a request")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
