"""A service builds its routes once started, before it takes connections, so
the first request after a restart does not wait for that."""

import asyncio
import inspect

import httpx
from fastapi import APIRouter, Depends, FastAPI

from modelog_platform.web import WarmedOnceStarted


class Dependency:
    """Counts how often FastAPI reads its signature: it does so building the
    route that depends on it."""

    def __init__(self) -> None:
        self.inspected = 0

    @property
    def __signature__(self) -> inspect.Signature:
        self.inspected += 1
        return inspect.Signature()

    def __call__(self) -> int:
        return 1


def service() -> tuple[FastAPI, Dependency]:
    dependency, router = Dependency(), APIRouter()

    @router.get("/v1/things/{name}")
    def thing(name: str, one: int = Depends(dependency)):
        return {"name": name, "one": one}

    app = FastAPI()
    app.include_router(router)
    return app, dependency


async def run_lifespan(app) -> list[str]:
    """Start the app and shut it down, as uvicorn does; the messages it sent."""
    inbox: asyncio.Queue[dict] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    sent: list[str] = []

    async def send(message) -> None:
        sent.append(message["type"])
        if message["type"] == "lifespan.startup.complete":
            await inbox.put({"type": "lifespan.shutdown"})
    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, send)
    return sent


async def first_request(app) -> dict:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as client:
        response = await client.get("/v1/things/a")
    response.raise_for_status()
    return response.json()


async def test_the_first_request_builds_no_route_once_the_service_has_started_warm():
    app, dependency = service()
    sent = await run_lifespan(WarmedOnceStarted(app, warm=app))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    built_at_start = dependency.inspected
    assert built_at_start > 0
    assert await first_request(app) == {"name": "a", "one": 1}
    assert dependency.inspected == built_at_start


async def test_without_the_warm_up_the_first_request_builds_its_route():
    app, dependency = service()
    await run_lifespan(app)
    before = dependency.inspected
    await first_request(app)
    assert dependency.inspected > before
