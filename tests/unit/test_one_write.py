"""An answer's head and body leave in one write (modelog_platform/one_write.py):
the writes a connection makes in one turn of the event loop are sent together
at its end, in order; what comes after an await leaves on its own; closing
sends what is held first; and uvicorn serving through it answers as before,
plain, streamed and kept-alive."""

import asyncio
import socket

import httpx
import uvicorn

from modelog_platform.one_write import HeldWrites, OneWriteHttpToolsProtocol


class Recorded:
    """A transport that records what reaches it."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default=None):
        return {"peername": ("127.0.0.1", 5)}.get(name, default)


async def test_writes_made_in_one_turn_leave_together_at_its_end_in_order():
    transport = Recorded()
    held = HeldWrites(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    held.write(b"{}")
    assert transport.writes == []
    await asyncio.sleep(0)
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]


async def test_what_comes_after_an_await_leaves_on_its_own():
    transport = Recorded()
    held = HeldWrites(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.writelines([b"head ", b"chunk 1"])
    await asyncio.sleep(0)
    held.write(b"chunk 2")
    held.write(b"")  # nothing to send: no write of its own
    await asyncio.sleep(0)
    assert transport.writes == [b"head chunk 1", b"chunk 2"]


async def test_closing_sends_what_is_held_first_and_a_closing_transport_gets_nothing_more():
    transport = Recorded()
    held = HeldWrites(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(b"last answer")
    held.close()
    assert transport.writes == [b"last answer"] and transport.closed
    held.write(b"too late")
    await asyncio.sleep(0)
    assert transport.writes == [b"last answer"]
    assert held.get_extra_info("peername") == ("127.0.0.1", 5)  # the rest is the transport's own


class CountedProtocol(OneWriteHttpToolsProtocol):
    """Counts the writes that reach the socket's transport."""
    writes: list[bytes] = []

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        original = transport.write

        def write(data: bytes) -> None:
            CountedProtocol.writes.append(bytes(data))
            original(data)
        transport.write = write  # type: ignore[method-assign]
        super().connection_made(transport)


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/streamed":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for part in (b"one ", b"two"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    body = b'{"artifact_uri":"s3://bucket/model"}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def test_uvicorn_through_it_sends_each_plain_answer_in_one_write_and_streams_as_before():
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, http=CountedProtocol, lifespan="off", log_config=None))
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        CountedProtocol.writes.clear()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            answers = [await http.get("/plain") for _ in range(3)]  # one kept-alive connection
            assert [(a.status_code, a.json()) for a in answers] == [(200, {"artifact_uri": "s3://bucket/model"})] * 3
            assert len(CountedProtocol.writes) == 3
            assert all(w.startswith(b"HTTP/1.1 200 OK\r\n") and w.endswith(b"s3://bucket/model\"}")
                       for w in CountedProtocol.writes)
            streamed = await http.get("/streamed")
            assert (streamed.status_code, streamed.text) == (200, "one two")
    finally:
        server.should_exit = True
        await serving
