"""The registrar's kept connections to the projector (registrar/projector_http.py),
through the MLflow cache's seq check (registrar/mlflow/seq_reads.py) and a
write's wait for its outcome (registrar/outcomes.py), against a small HTTP
server that records what it was asked: they send the names and the
registrar's token, read answers by length and by chunks, keep one connection
for many requests in turn and one each for requests at once, send again once
when the projector closed a kept connection, and fail (so the routes answer)
on anything but a 200."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit
from uuid import UUID

import httpx
import pytest

from modelog_platform.identity.dev import DevIssuer
from modelog_platform.identity.service import ServiceToken
from registrar.mlflow.seq_reads import SeqReader, SeqReadFailed
from registrar.outcomes import OutcomeClient, OutcomesUnavailable
from registrar.projector_http import ProjectorHttp, authorization_of

CID = UUID("c0ffee00-0000-4000-8000-000000000000")


def seq_reader(url: str, authorization=lambda: None) -> SeqReader:
    return SeqReader(ProjectorHttp(url, authorization))


@dataclass
class Projector:
    """Answers each request with `answer(names)`: (status, body, extra headers)."""
    chunked: bool = False
    close_after_each: bool = False  # closes the connection after answering, as an idle timeout would
    status: int = 200
    hold: asyncio.Event | None = None  # answers wait for it, as an outcome's wait does
    requests: list[tuple[str, list[str], str | None]] = field(default_factory=list)  # path, names, authorization
    connections: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                target = head.split(b" ")[1].decode()
                headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line)
                url = urlsplit(target)
                names = [v for k, v in parse_qsl(url.query) if k == "name"]
                self.requests.append((url.path, names, headers.get("Authorization")))
                if self.hold is not None:
                    await self.hold.wait()
                if url.path.endswith("/v1/seqs"):
                    body = json.dumps({"seqs": {n: [len(n), 7] for n in names if not n.startswith("none")}}).encode()
                else:  # an outcome: the path and query it was asked with, for the test to see
                    body = json.dumps({"asked": target}).encode()
                if self.chunked:
                    half = len(body) // 2
                    framing = b"Transfer-Encoding: chunked\r\n\r\n"
                    payload = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:half], body[half:]))
                    writer.write(b"HTTP/1.1 %d X\r\n" % self.status + framing + payload + b"0\r\n\r\n")
                else:
                    writer.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (self.status, len(body), body))
                await writer.drain()
                if self.close_after_each:
                    break
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()


@asynccontextmanager
async def running(projector: Projector) -> AsyncIterator[str]:
    server = await asyncio.start_server(projector.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/base"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_read_sends_the_names_and_the_token_and_gives_each_models_seq_and_table():
    projector = Projector()
    async with running(projector) as url:
        reader = seq_reader(url, lambda: "Bearer t0ken")
        seqs = await reader.read(["fraud", "a b/ü", "none-such"])
        await reader.close()
    assert seqs == {"fraud": (5, 7), "a b/ü": (5, 7)}
    assert projector.requests == [("/base/v1/seqs", ["fraud", "a b/ü", "none-such"], "Bearer t0ken")]


async def test_many_reads_share_one_kept_connection():
    projector = Projector()
    async with running(projector) as url:
        reader = seq_reader(url)
        for name in ("a", "bb", "ccc"):
            assert await reader.read([name]) == {name: (len(name), 7)}
        await reader.close()
    assert projector.connections == 1 and [r[2] for r in projector.requests] == [None, None, None]


async def test_a_chunked_answer_is_read_whole():
    projector = Projector(chunked=True)
    async with running(projector) as url:
        reader = seq_reader(url)
        assert await reader.read(["chunky", "more"]) == {"chunky": (6, 7), "more": (4, 7)}
        assert await reader.read(["again"]) == {"again": (5, 7)}  # the connection left at the next answer
        await reader.close()


async def test_a_kept_connection_the_projector_closed_is_replaced_and_the_read_sent_again():
    projector = Projector(close_after_each=True)
    async with running(projector) as url:
        reader = seq_reader(url)
        assert await reader.read(["first"]) == {"first": (5, 7)}
        await asyncio.sleep(0.05)  # the close reaches the reader's side
        assert await reader.read(["second"]) == {"second": (6, 7)}
        await reader.close()
    assert projector.connections == 2


async def test_anything_but_a_200_fails_the_read():
    projector = Projector(status=503)
    async with running(projector) as url:
        reader = seq_reader(url)
        with pytest.raises(SeqReadFailed, match="503"):
            await reader.read(["down"])
        projector.status = 200
        assert await reader.read(["up"]) == {"up": (2, 7)}  # the refusal was whole: its connection goes on
        await reader.close()
    assert projector.connections == 1


async def test_requests_at_once_take_a_connection_each_and_keep_them_for_the_next():
    projector = Projector(hold=asyncio.Event())
    async with running(projector) as url:
        http = ProjectorHttp(url, lambda: None)
        reader = SeqReader(http)
        waiting = [asyncio.create_task(reader.read([name])) for name in ("a", "bb", "ccc")]
        while len(projector.requests) < 3:
            await asyncio.sleep(0.01)
        projector.hold.set()
        assert await asyncio.gather(*waiting) == [{"a": (1, 7)}, {"bb": (2, 7)}, {"ccc": (3, 7)}]
        for name in ("d", "ee", "fff"):
            assert await reader.read([name]) == {name: (len(name), 7)}
        await reader.close()
    assert projector.connections == 3


async def test_an_outcome_is_asked_with_its_wait_and_state_and_a_404_is_none():
    projector = Projector()
    async with running(projector) as url:
        outcomes = OutcomeClient(url, auth=None)
        answer = await outcomes.wait_for(CID, 2.5, with_state=True)
        assert answer == {"asked": "/base/v1/commands/c0ffee00-0000-4000-8000-000000000000?wait=2.5&state=true"}
        assert (await outcomes.wait_for(CID, 0))["asked"].endswith("?wait=0")
        projector.status = 404
        assert await outcomes.wait_for(CID, 0) is None
        projector.status = 503
        with pytest.raises(OutcomesUnavailable, match="cannot read outcomes now"):
            await outcomes.wait_for(CID, 0)
        await outcomes.close()
    with pytest.raises(OutcomesUnavailable, match="did not answer"):  # nothing listens there any more
        await OutcomeClient(url).wait_for(CID, 0)


async def test_no_projector_fails_the_read():
    async with running(Projector()) as url:
        pass  # closed: nothing listens there any more
    with pytest.raises(OSError):
        await seq_reader(url).read(["anyone"])


def test_the_token_is_the_one_the_clients_own_requests_carry(tmp_path):
    fixed = httpx.AsyncClient(base_url="http://projector", headers={"Authorization": "Bearer fixed"})
    assert authorization_of(fixed)() == "Bearer fixed"
    service = ServiceToken(DevIssuer(tmp_path).ensure(), "modelog-registrar", ("reader",))
    signed = httpx.AsyncClient(base_url="http://projector", auth=service)
    assert authorization_of(signed)() == f"Bearer {service.token()}"
    assert authorization_of(httpx.AsyncClient(base_url="http://projector"))() is None
