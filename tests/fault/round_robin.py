"""A round-robin TCP proxy for tests: several service instances behind one
address, as a load balancer puts them in front of clients.

Each accepted connection goes to the next backend in turn and bytes are piped
both ways until either side closes. A backend that refuses the connection
(killed, not started yet) is passed over for the next. HTTP clients that open
a connection per request are spread one request per backend; clients that keep
connections alive stick to one backend per connection, as behind a real
layer-4 balancer.
"""

import asyncio
import itertools
from collections import Counter


class RoundRobinProxy:
    def __init__(self, backends: list[tuple[str, int]]):
        self.backends = list(backends)
        self._turn = itertools.count()
        self.served: Counter = Counter()  # connections per backend port: proof that each took a share
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        """Listen on a free local port; the proxy's base URL."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> str:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for _ in range(len(self.backends)):
            host, port = self.backends[next(self._turn) % len(self.backends)]
            try:
                upstream = await asyncio.open_connection(host, port)
            except OSError:
                continue
            self.served[port] += 1
            return upstream
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await self._connect()
        if upstream is None:  # no backend up: the client sees the connection close
            writer.close()
            return
        up_reader, up_writer = upstream
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        sink.close()
