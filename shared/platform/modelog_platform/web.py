"""What every HTTP service shares: error bodies with machine-readable codes,
health endpoints, and a single-worker uvicorn server with /metrics in front."""

import asyncio
import gc
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated

import anyio.to_thread
import uvicorn
from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Scope

from modelog_platform.metrics import RequestMetrics
from modelog_platform.one_write import OneWriteHttpToolsProtocol

STARTUP_FAILED = 3  # the exit status uvicorn.run gives when the app does not start

# A version number in a URL: what the read models can hold (PostgreSQL integer).
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1, description="the version number")]


class ApiError(Exception):
    """A refusal the client can act on: HTTP status, stable code, human message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None, **details):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details
        self.headers = headers  # e.g. WWW-Authenticate on a 401, Retry-After on a 429


def error_body(code: str, message: str, **details) -> dict:
    return {"error": {"code": code, "message": message, **details}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError):
        return JSONResponse(error_body(error.code, error.message, **error.details), error.status,
                            headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError):
        problems = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()]
        return JSONResponse(error_body("invalid_request", invalid_request_message(problems), problems=problems), 422)


def invalid_request_message(problems: list[dict]) -> str:
    """The first problem in words (where, and what is allowed), and how many more."""
    if not problems:
        return "the request does not match the API"
    first = problems[0]
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return f"the request does not match the API: {'.'.join(map(str, first['loc']))}: {first['msg']}{more}"


def health_router(readiness: Callable[[], Awaitable[Mapping[str, object]]]) -> APIRouter:
    """/healthz: the process answers. /readyz: every engine it needs answers too."""
    router = APIRouter()

    @router.get("/healthz", include_in_schema=False)
    async def healthz():
        return {"status": "alive"}

    @router.get("/readyz", include_in_schema=False)
    async def readyz():
        try:
            checks = await asyncio.wait_for(readiness(), timeout=3)
        except Exception as error:  # an unreachable engine is an answer, not a crash
            checks = {"error": False, "detail": str(error)}
        ready = all(v for v in checks.values() if isinstance(v, bool))
        return JSONResponse({"ready": ready, "checks": checks}, 200 if ready else 503)

    return router


def server_options(app: ASGIApp, host: str, port: int) -> dict:
    # One worker per process: uvicorn's multi-worker socket leaves TCP_NODELAY
    # off, costing keep-alive clients ~40 ms a request. Scale by processes.
    # RequestMetrics outermost: it sees every request, a fast path's included.
    # OneWriteHttpToolsProtocol: an answer's head and body leave in one socket write.
    # WarmedOnceStarted warms `app` itself: its warm-up is no request to count.
    return {"app": FrozenOnceStarted(WarmedOnceStarted(RequestMetrics(app), warm=app)), "host": host,
            "port": port, "log_config": None, "access_log": False, "workers": 1, "http": OneWriteHttpToolsProtocol}


def serve(app: ASGIApp, host: str, port: int) -> None:
    """Serve `app` on an event loop of its own until SIGTERM or SIGINT."""
    uvicorn.run(**server_options(app, host, port))


async def serve_here(app: ASGIApp, host: str, port: int) -> None:
    """Serve `app` on the running event loop, beside work already under way
    there, until SIGTERM or SIGINT; exits as uvicorn.run does if it cannot start."""
    server = uvicorn.Server(uvicorn.Config(**server_options(app, host, port)))
    await server.serve()
    if not server.started:
        sys.exit(STARTUP_FAILED)


class FrozenOnceStarted:
    """Takes what exists once the app has started out of the cycle collector's reach.

    Modules, the app, its pools and clients (~100,000 objects) live as long as
    the process; Python's full collections scanned them all again every few
    seconds under load, 80-130 ms each, which every request in flight waited
    out. After `gc.freeze()` a full collection scans only what came later."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)

        async def send_then_freeze(message) -> None:
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                gc.freeze()
        await self.app(scope, receive, send_then_freeze)


WARM_UP_PATH = "/.well-known/modelog-warm-up"  # a path no route of any service matches


class WarmedOnceStarted:
    """Does once the app has started what the first request after a restart
    would otherwise wait for, before the server takes connections.

    FastAPI builds an included router's routes (each endpoint's dependencies
    and parameter models) on the first request that walks that router, and
    anyio imports its backend and starts its worker thread on the first call
    into a thread (every sync dependency). Both came to about half of the
    first answer after a restart. A GET that no route matches walks every
    router, and answers 404 to no one."""

    def __init__(self, app: ASGIApp, warm: ASGIApp):
        self.app, self.warm = app, warm

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)

        async def warm_then_send(message) -> None:
            if message["type"] == "lifespan.startup.complete":
                await warm_up(self.warm)
            await send(message)
        await self.app(scope, receive, warm_then_send)


async def warm_up(app: ASGIApp) -> None:
    await anyio.to_thread.run_sync(int)
    scope: Scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                    "scheme": "http", "path": WARM_UP_PATH, "raw_path": WARM_UP_PATH.encode(), "root_path": "",
                    "query_string": b"", "headers": [], "client": None, "server": None}

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def discard(message) -> None:
        pass
    await app(scope, receive, discard)
