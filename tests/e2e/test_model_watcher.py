"""The serving side's ModelWatcher against the real stack: watchers swap to
each new Production version with zero failed requests and never hand out a
model half loaded; a version whose stored bytes fail their digest is never
swapped in; a watcher that loses the change feed catches up by polling the
lookup, then by the feed again, with no change missed; one given a token function renews its token as each
expires."""

import contextlib
import hashlib
import io
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from uuid import uuid4

import pytest

from modelog import Client, ModelWatcher, WatcherEvent
from modelog_platform.adapters.s3 import ArtifactStore, artifact_key
from modelog_platform.identity.dev import DevIssuer
from tests.e2e.helpers import token_for, unique

pytestmark = pytest.mark.engines

WAIT_S = 90  # generous: a condition, never a speed, is what these tests check


class LoadedModel:
    """A model whose loading takes a while and is marked done as its very last step."""

    def __init__(self, path: Path):
        self.payload = path.read_bytes()
        time.sleep(0.2)  # a real loader takes time: a request must never see this half done
        self.ready = True

    def __call__(self, request: int) -> bytes:
        assert self.ready, "a request got a model still loading"
        return self.payload


@pytest.fixture
def versions(client, admin_client, tmp_path):
    """A model with three registered versions (none in a stage yet), and each one's bytes."""
    name, contents = unique("watched"), {}
    for n in (1, 2, 3):
        contents[n] = f"version {n} ".encode() + uuid4().bytes
        (tmp_path / f"v{n}.bin").write_bytes(contents[n])
        client.register_version(name, tmp_path / f"v{n}.bin")
    admin_client.set_policy(name, {"approvals_required": {"Production": 1}})
    return name, contents


@pytest.fixture
def promote(client, stack):
    """Staging, then Production with a second person's approval, as the default policy wants."""
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("bob", "approver")) as bob:
        def to_production(model: str, version: int) -> None:
            client.request_transition(model, version, "Staging")
            bob.approve(model, client.request_transition(model, version, "Production")["request_id"])
        yield to_production


def watcher(stack, model: str, tmp_path: Path, events: list[WatcherEvent], **options) -> ModelWatcher:
    options.setdefault("projector_url", stack.url("projector"))
    options.setdefault("token", token_for("serving", "reader"))
    options.setdefault("stage", "Production")
    return ModelWatcher(model, LoadedModel, registrar_url=stack.url("registrar"),
                        cache_dir=tmp_path / f"cache-{uuid4().hex[:6]}",
                        on_event=events.append, **options)


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def test_two_watchers_swap_to_each_promoted_version_with_no_failed_request(stack, versions, promote, tmp_path):
    model, contents = versions
    events: list[WatcherEvent] = []
    watchers = [watcher(stack, model, tmp_path, events).start() for _ in range(2)]
    answered: list[list[bytes]] = [[], []]
    failures: list[BaseException] = []
    stopping = threading.Event()

    def requests(number: int) -> None:
        while not stopping.is_set():
            try:
                with watchers[number].serving() as served:
                    answered[number].append(served(len(answered[number])))
            except BaseException as error:
                failures.append(error)

    try:
        promote(model, 1)
        assert all(w.wait_for(1, WAIT_S) for w in watchers)
        loops = [threading.Thread(target=requests, args=(n,)) for n in range(2)]
        for loop in loops:
            loop.start()
        promote(model, 2)
        assert all(w.wait_for(2, WAIT_S) for w in watchers)
        eventually(lambda: all(a[-1:] == [contents[2]] for a in answered), "requests answered by version 2")
        stopping.set()
        for loop in loops:
            loop.join()
        cache_files = [sorted(p.name for p in w.cache_dir.iterdir()) for w in watchers]
    finally:
        stopping.set()
        for w in watchers:
            w.stop()

    assert failures == []
    for served in answered:
        switched = served.index(contents[2])
        assert set(served[:switched]) == {contents[1]} and set(served[switched:]) == {contents[2]}
    assert [(e.kind, e.version) for e in events if e.kind in ("swapped", "failed")] == [
        ("swapped", 1), ("swapped", 1), ("swapped", 2), ("swapped", 2)]
    assert all(len(files) == 2 for files in cache_files)  # the current version and the previous one


def test_a_version_whose_stored_bytes_fail_their_digest_is_never_swapped_in(
        stack, engines, versions, promote, tmp_path):
    model, contents = versions
    store = ArtifactStore(engines)
    events: list[WatcherEvent] = []
    with watcher(stack, model, tmp_path, events) as serving:
        promote(model, 1)
        assert serving.wait_for(1, WAIT_S)
        tampered = b"tampered " + uuid4().bytes  # the stored object of version 2, no longer its bytes
        store.client.put_object(store.bucket, artifact_key(_sha256(contents[2])), io.BytesIO(tampered), len(tampered))

        promote(model, 2)
        eventually(lambda: serving.last_error is not None, "the corrupt version's failure reported")

        assert serving.version == 1 and serving.model(0) == contents[1]
        assert (serving.last_error.kind, serving.last_error.version) == ("failed", 2)
        assert [e.version for e in events if e.kind == "swapped"] == [1]
        assert [p.name for p in serving.cache_dir.iterdir()] == [f"v1-{_sha256(contents[1])[:12]}"]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()



def test_a_watcher_on_an_alias_follows_it_swaps_back_without_a_download_and_outlives_its_deletion(
        client, stack, versions, tmp_path):
    model, contents = versions
    events: list[WatcherEvent] = []
    with watcher(stack, model, tmp_path, events, stage=None, alias="champion") as serving:
        client.set_alias(model, "champion", 1)
        assert serving.wait_for(1, WAIT_S)
        client.set_alias(model, "champion", 2)
        assert serving.wait_for(2, WAIT_S)
        client.set_alias(model, "champion", 1)  # back: version 1 is still loaded
        assert serving.wait_for(1, WAIT_S)
        client.delete_alias(model, "champion")
        eventually(lambda: any(e.kind == "target_gone" for e in events), "the alias's deletion reported")
        assert serving.model(0) == contents[1]

    assert [(e.kind, e.version) for e in events] == [("swapped", 1), ("swapped", 2), ("swapped", 1),
                                                     ("target_gone", 1)]
    assert "still loaded" in events[2].detail

class CuttableProxy:
    """A TCP proxy in front of the projector that can cut the change feed (any
    connection that asks for /v1/changes), or everything."""

    def __init__(self, upstream: str):
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.cut_feed = self.cut_all = False
        self.feeds: list[socket.socket] = []
        self.feed_requests: list[bytes] = []  # each request for the feed, as sent
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self, everything: bool = False) -> None:
        self.cut_feed, self.cut_all = True, everything
        for feed in self.feeds:
            _close(feed)

    def restore(self) -> None:
        self.cut_feed = self.cut_all = False

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_all:
                _close(downstream)
                continue
            upstream = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(downstream, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, downstream, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, requests: bool) -> None:
        try:
            while data := source.recv(65536):
                if requests and b"/v1/changes" in data:
                    self.feeds.append(source)
                    self.feed_requests.append(data)
                    if self.cut_feed:
                        break
                if requests and self.cut_all:
                    break
                target.sendall(data)
        except OSError:
            pass  # either side went away: close both
        _close(source)
        _close(target)

    def close(self) -> None:
        _close(self.listener)


def _close(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
    connection.close()


def test_a_watcher_that_loses_the_feed_catches_up_by_polling_then_by_the_feed_again(
        stack, versions, promote, tmp_path):
    model, contents = versions
    proxy = CuttableProxy(stack.url("projector"))
    events: list[WatcherEvent] = []
    try:
        with watcher(stack, model, tmp_path, events, projector_url=proxy.url, poll_interval=0.5) as serving:
            promote(model, 1)
            assert serving.wait_for(1, WAIT_S)
            eventually(lambda: serving.feed_connected, "the feed open")

            proxy.cut()  # the feed only: lookups still pass
            eventually(lambda: not serving.feed_connected, "the feed lost")
            promote(model, 2)
            assert serving.wait_for(2, WAIT_S)  # by polling the lookup: the feed is still refused
            assert not serving.feed_connected

            proxy.restore()
            eventually(lambda: serving.feed_connected, "the feed open again")
            proxy.cut(everything=True)  # a gap in which even the lookup is unreachable
            eventually(lambda: not serving.feed_connected, "the feed lost again")
            promote(model, 3)
            proxy.restore()
            assert serving.wait_for(3, WAIT_S)
            eventually(lambda: serving.feed_connected, "the feed open after the gap")
            assert serving.model(0) == contents[3]
    finally:
        proxy.close()

    kinds = [(e.kind, e.version) for e in events if e.kind != "target_gone"]
    assert kinds == [("swapped", 1), ("feed_lost", None), ("swapped", 2), ("feed_back", None),
                     ("feed_lost", None), ("swapped", 3), ("feed_back", None)] or kinds == [
        ("swapped", 1), ("feed_lost", None), ("swapped", 2), ("feed_back", None),
        ("feed_lost", None), ("feed_back", None), ("swapped", 3)]


def test_a_watcher_given_a_token_function_reconnects_the_feed_with_a_fresh_token_when_one_expires(
        stack, versions, promote, tmp_path):
    model, _ = versions
    proxy = CuttableProxy(stack.url("projector"))
    issued: list[str] = []

    def short_lived_token() -> str:  # the feed ends when its token expires
        issued.append(DevIssuer.local().issue("serving", ("reader",), ttl_s=4)[1])
        return issued[-1]

    events: list[WatcherEvent] = []
    try:
        with watcher(stack, model, tmp_path, events, projector_url=proxy.url, token=short_lived_token) as serving:
            promote(model, 1)
            assert serving.wait_for(1, WAIT_S)
            eventually(lambda: len(proxy.feed_requests) >= 3, "the feed reconnected after its tokens expired")
            promote(model, 2)
            assert serving.wait_for(2, WAIT_S)
    finally:
        proxy.close()

    feed_tokens = {line for request in proxy.feed_requests for line in request.split(b"\r\n")
                   if line.lower().startswith(b"authorization:")}
    assert len(feed_tokens) == len(proxy.feed_requests)  # a fresh token for each connection
    assert [(e.kind, e.version) for e in events] == [("swapped", 1), ("swapped", 2)]
