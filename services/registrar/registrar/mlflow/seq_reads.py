"""The model cache's seq check (`GET /v1/seqs`): one HTTP/1.1 request on a
connection kept open to the projector, framed by h11, instead of a request
through the registrar's httpx client.

Why: the check runs once per batch of MLflow reads, after the batch's
requests arrived (decision 0011), so under load it runs hundreds of times a
second. Through httpx, its layers (request and URL models, the auth flow,
cookies, a log line per request, the connection pool) cost the registrar's
event loop more CPU than the rest of the batch's reads together. Here h11
(the HTTP/1.1 state machine under httpx) frames the request and the answer,
and this module only moves their bytes on one connection: the same
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

import h11
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


def seqs_request(host: str, path: str, names: list[str], authorization: str | None) -> h11.Request:
    query = "&".join("name=" + quote(name, safe="") for name in names)
    headers = [("Host", host), ("Accept", "application/json")]
    if authorization:
        headers.append(("Authorization", authorization))
    return h11.Request(method="GET", target=f"{path}?{query}", headers=headers)


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
        self._connection: tuple[asyncio.StreamReader, asyncio.StreamWriter, h11.Connection] | None = None
        self._lock = asyncio.Lock()

    async def read(self, names: list[str]) -> dict[str, tuple[int, int]]:
        """The (seq, table) of those of `names` that are models, read now."""
        request = seqs_request(self.host_header, self.path, names, self.authorization())
        async with self._lock:
            try:
                async with asyncio.timeout(self.timeout_s):
                    return await self._exchange(request)
            except BaseException:
                await self.close()  # an answer left half read would be taken for the next one's
                raise

    async def _exchange(self, request: h11.Request) -> dict[str, tuple[int, int]]:
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

    async def _send(self, request: h11.Request) -> tuple[int, bytes]:
        if self._connection is None:
            if self.tls and self._ssl is None:
                self._ssl = httpx.create_ssl_context()  # the trust the registrar's httpx client has
            reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self._ssl)
            self._connection = reader, writer, h11.Connection(our_role=h11.CLIENT)
        reader, writer, http = self._connection
        writer.write(http.send(request) + http.send(h11.EndOfMessage()))
        await writer.drain()
        status, body = 0, bytearray()
        while True:
            event = http.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(READ_BYTES)
                if not data and not status:
                    raise ConnectionResetError("the projector closed the connection before answering")
                http.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionResetError("the projector closed the connection mid-answer")
        if http.our_state is h11.DONE and http.their_state is h11.DONE:
            http.start_next_cycle()  # kept open for the next batch
        else:
            await self.close()  # the projector asked to close it
        return status, bytes(body)

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection[1].close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await connection[1].wait_closed()
