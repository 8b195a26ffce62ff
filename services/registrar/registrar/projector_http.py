"""The registrar's hot requests to the projector (the MLflow cache's seq
checks, every write's wait for its outcome): HTTP/1.1 on connections kept
open, each request written as bytes and its answer parsed by httptools,
instead of through the registrar's httpx client.

Why: through httpx, a request's layers (request and URL models, the auth
flow, cookies, a log line per request, the connection pool, h11's framing)
cost the registrar's event loop more CPU than the work around them: the seq
check ran hundreds of times a second under MLflow's reads, and the outcome
requests were half a write's CPU in the registrar. Here a request is a few
header lines, and its answer is parsed by httptools (llhttp, the parser
uvicorn serves with: Content-Length, chunks, keep-alive), a few microseconds
where h11 took about 150: the same projector, the same identity, the same
answers.

Each request takes a connection of its own for as long as it runs (an
outcome's answer may be held by the projector for seconds), an idle one if
there is one, else a new one; at most MAX_CONNECTIONS at once. A kept connection the projector has closed
while it idled fails the next request before any answer: that request (a
GET, safe to send again) goes once more on a new connection.
"""

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit

import httptools
import httpx

from modelog_platform.identity.service import ServiceToken

TIMEOUT_S = 35.0  # as the registrar's httpx client for the projector waits
READ_BYTES = 65_536
IDLE_KEPT = 32  # idle connections kept for the next requests; more are closed
# Requests under way at once, as httpx's pool bounds them: a burst of writes
# waiting for outcomes queues here rather than opening a socket each.
MAX_CONNECTIONS = 100

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter, "Answers"]


def authorization_of(http: httpx.AsyncClient) -> Callable[[], str | None]:
    """The Authorization header `http`'s own requests carry: its default
    header's, else the one its auth sets, asked again for each request (the
    registrar's service token is renewed before it expires)."""
    def current() -> str | None:
        if (fixed := http.headers.get("authorization")) is not None or http.auth is None:
            return fixed
        if isinstance(http.auth, ServiceToken):
            return f"Bearer {http.auth.token()}"  # what its auth flow sets, without a request to set it on
        request = next(http.auth.auth_flow(httpx.Request("GET", http.base_url)))
        return request.headers.get("authorization")
    return current


class Answers:
    """The answers on one connection, as httptools' parser reads them: the
    current one's status, whether the connection stays open after it, its
    body, and when it is whole."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.next()

    def next(self) -> None:
        self.status, self.keep_alive, self.body, self.complete = 0, False, bytearray(), False

    def on_headers_complete(self) -> None:  # asked here: the parser starts afresh once the answer is whole
        self.status, self.keep_alive = self.parser.get_status_code(), self.parser.should_keep_alive()

    def on_body(self, data: bytes) -> None:
        self.body += data

    def on_message_complete(self) -> None:
        self.complete = True


class ProjectorHttp:
    """GETs to the projector at `base_url` as `authorization()` says, on kept connections."""

    def __init__(self, base_url: httpx.URL | str, authorization: Callable[[], str | None],
                 timeout_s: float = TIMEOUT_S):
        url = urlsplit(str(base_url))
        self.tls = url.scheme == "https"
        self.host, self.port = url.hostname or "127.0.0.1", url.port or (443 if self.tls else 80)
        self.host_header = url.netloc.rpartition("@")[2]
        self.prefix = url.path.rstrip("/")
        self.authorization, self.timeout_s = authorization, timeout_s
        self._ssl: ssl.SSLContext | None = None
        self._idle: list[Connection] = []
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def get(self, path_and_query: str) -> tuple[int, bytes]:
        """GET `path_and_query` (under the base URL's path): the answer's status and body.
        OSError, TimeoutError or httptools.HttpParserError when there is no whole answer."""
        lines = [f"GET {self.prefix}{path_and_query} HTTP/1.1", f"Host: {self.host_header}", "Accept: application/json"]
        if (authorization := self.authorization()) is not None:
            lines.append(f"Authorization: {authorization}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        async with asyncio.timeout(self.timeout_s), self._slots:
            while self._idle:
                connection = self._idle.pop()
                try:
                    return await self._exchange(connection, request)
                except ConnectionError:
                    continue  # the projector closed it while it idled: the next, or a new one
            return await self._exchange(await self._connect(), request)

    async def _connect(self) -> Connection:
        if self.tls and self._ssl is None:
            self._ssl = httpx.create_ssl_context()  # the trust the registrar's httpx client has
        reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self._ssl)
        return reader, writer, Answers()

    async def _exchange(self, connection: Connection, request: bytes) -> tuple[int, bytes]:
        reader, writer, answer = connection
        kept = False
        try:
            writer.write(request)
            await writer.drain()
            answer.next()
            while not answer.complete:
                if not (data := await reader.read(READ_BYTES)):
                    raise ConnectionResetError("the projector closed the connection before its answer was whole")
                answer.parser.feed_data(data)  # HttpParserError on what is not HTTP/1.1
            kept = answer.keep_alive and len(self._idle) < IDLE_KEPT
            return answer.status, bytes(answer.body)
        finally:  # an answer left half read (a timeout, an error) would be taken for the next one's
            if kept:
                self._idle.append(connection)
            else:
                await _close(connection)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await _close(connection)


async def _close(connection: Connection) -> None:
    writer = connection[1]
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        await writer.wait_closed()
