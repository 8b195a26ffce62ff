"""The model cache's seq check (`GET /v1/seqs`): one HTTP/1.1 request on a
connection kept open to the projector, its answer parsed by httptools,
instead of a request through the registrar's httpx client.

Why: the check runs once per batch of MLflow reads, after the batch's
requests arrived (decision 0011), so under load it runs hundreds of times a
second. Through httpx, its layers (request and URL models, the auth flow,
cookies, a log line per request, the connection pool, h11's framing) cost the
registrar's event loop more CPU than the rest of the batch's reads together.
Here the request is three header lines written as bytes, and the answer is
parsed by httptools (llhttp, the parser uvicorn serves with: Content-Length,
chunks, keep-alive), a few microseconds where h11 took about 150: the same
projector, the same identity, the same answer.

Batches are read one at a time (BatchedReads), so one connection serves them.
A kept-open connection the projector has closed in the meantime fails the
next request before any answer: that request is sent once more on a new
connection; a GET read again still starts after its callers arrived.
"""

import asyncio
import contextlib
import json
import ssl
from collections.abc import Callable
from urllib.parse import quote, urlsplit

import httptools
import httpx

from modelog_platform.identity.service import ServiceToken

TIMEOUT_S = 35.0  # as the registrar's client for the projector waits
READ_BYTES = 65_536


class SeqReadFailed(Exception):
    """The projector gave no usable answer (its status and the start of its body)."""


def authorization_of(http: httpx.AsyncClient) -> Callable[[], str | None]:
    """The Authorization header `http`'s own requests carry: its default
    header's, else the one its auth sets, asked again for each read (the
    registrar's service token is renewed before it expires)."""
    def current() -> str | None:
        if (fixed := http.headers.get("authorization")) is not None or http.auth is None:
            return fixed
        if isinstance(http.auth, ServiceToken):
            return f"Bearer {http.auth.token()}"  # what its auth flow sets, without a request to set it on
        request = next(http.auth.auth_flow(httpx.Request("GET", http.base_url)))
        return request.headers.get("authorization")
    return current


def request_bytes(host: str, path: str, names: list[str], authorization: str | None) -> bytes:
    query = "&".join("name=" + quote(name, safe="") for name in names)
    lines = [f"GET {path}?{query} HTTP/1.1", f"Host: {host}", "Accept: application/json"]
    if authorization:
        lines.append(f"Authorization: {authorization}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


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


def seqs_of(body: bytes) -> dict[str, tuple[int, int]]:
    """`{"seqs": {name: [seq, table]}}` as (seq, table) by name."""
    return {name: (at[0], at[1]) for name, at in json.loads(body)["seqs"].items()}


class SeqReader:
    def __init__(self, base_url: httpx.URL | str, authorization: Callable[[], str | None],
                 timeout_s: float = TIMEOUT_S):
        url = urlsplit(str(base_url))
        self.tls = url.scheme == "https"
        self.host, self.port = url.hostname or "127.0.0.1", url.port or (443 if self.tls else 80)
        self.host_header = url.netloc.rpartition("@")[2]
        self.path = url.path.rstrip("/") + "/v1/seqs"
        self.authorization, self.timeout_s = authorization, timeout_s
        self._ssl: ssl.SSLContext | None = None
        self._connection: tuple[asyncio.StreamReader, asyncio.StreamWriter, Answers] | None = None
        self._lock = asyncio.Lock()

    async def read(self, names: list[str]) -> dict[str, tuple[int, int]]:
        """The (seq, table) of those of `names` that are models, read now."""
        request = request_bytes(self.host_header, self.path, names, self.authorization())
        async with self._lock:
            try:
                async with asyncio.timeout(self.timeout_s):
                    return await self._exchange(request)
            except BaseException:
                await self.close()  # an answer left half read would be taken for the next one's
                raise

    async def _exchange(self, request: bytes) -> dict[str, tuple[int, int]]:
        reused = self._connection is not None
        try:
            status, body = await self._send(request)
        except ConnectionError:
            if not reused:
                raise
            await self.close()  # the projector closed the kept connection while it idled
            status, body = await self._send(request)
        if status != 200:
            raise SeqReadFailed(f"GET {self.path}: {status} {body[:200]!r}")
        return seqs_of(body)

    async def _send(self, request: bytes) -> tuple[int, bytes]:
        if self._connection is None:
            if self.tls and self._ssl is None:
                self._ssl = httpx.create_ssl_context()  # the trust the registrar's httpx client has
            reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self._ssl)
            self._connection = reader, writer, Answers()
        reader, writer, answer = self._connection
        writer.write(request)
        await writer.drain()
        answer.next()
        while not answer.complete:
            if not (data := await reader.read(READ_BYTES)):
                raise ConnectionResetError("the projector closed the connection before its answer was whole")
            answer.parser.feed_data(data)  # HttpParserError on what is not HTTP/1.1
        if not answer.keep_alive:
            await self.close()
        return answer.status, bytes(answer.body)

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection[1].close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await connection[1].wait_closed()

