"""An answer's head and body leave in one socket write, not two.

Why: uvicorn writes a response's status line and headers when the app sends
`http.response.start`, and its body at `http.response.body`; uvloop sends each
write at once. A small answer from a fast path (an MLflow read, a serving
lookup, a seq check) was two send() calls and two TCP segments with
TCP_NODELAY: the server paid a system call more than it needed, and the
client woke twice to read one answer. Here the writes a connection makes in
one turn of the event loop are held and sent together at the end of it
(`loop.call_soon`); nothing is held across an await, so a streamed body's
chunks still leave as they come. Ordering is kept: a connection's writes go
out in the order made, and `close()` sends what is held first.
"""

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeldWrites:
    """A transport whose writes in one turn of the loop leave as one."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self.transport, self.loop = transport, loop
        self.held: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self.held:
            self.loop.call_soon(self.flush)
        self.held.append(data)

    def writelines(self, lines: list[bytes]) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        if not self.held:
            return
        data = self.held[0] if len(self.held) == 1 else b"".join(self.held)
        self.held.clear()
        if not self.transport.is_closing():
            self.transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() + sum(map(len, self.held))

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self.held.clear()
        self.transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)  # reading, flow control, extra info: the transport's own


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing through HeldWrites."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(HeldWrites(transport, self.loop))  # type: ignore[arg-type]
