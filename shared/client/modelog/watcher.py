"""A serving process's model, kept at the version a stage or alias names.

`ModelWatcher` follows one stage or alias of a model (modelog.follower),
downloads each new version in the background with the SDK's digest-checked
`download`, loads it with the caller's `loader(path) -> model`, and only then
swaps it in. The swap is one assignment: a request holds the model object it
took, so requests in flight finish on the old model and new ones get the new
one, and no request ever sees a model half loaded. A version whose download
fails its digest, or whose loader raises, is never swapped in: the old one
keeps serving and the failure is reported (`on_event`, the log,
`last_error`). Two threads of its own, plain sync httpx: the follower (feed,
or polling while the feed is unreachable) and the loader.

After each swap the watcher reports what it serves (ReportServing: its
instance id, the version, since when, what it follows) so that the registry
can say what is live where. It reports only when that changes, never as a
heartbeat, so the log holds one fact per change; a report that fails is
logged and sent on the next swap, and never stops serving. A token without
the server (or operator) role is told no once: the watcher logs it and sends
no more reports.
"""

import contextlib
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from modelog.client import Client, Forbidden
from modelog.follower import Target, TargetFollower

log = logging.getLogger("modelog.watcher")


@dataclass(frozen=True)
class Served:
    """A loaded version: what `watcher.model` hands out, and since when."""

    version: int
    sha256: str
    model: Any
    path: Path
    since: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


@dataclass(frozen=True)
class WatcherEvent:
    """What the watcher reports: `swapped` (now serving `version`), `failed`
    (`version` could not be served: `error` says why; the old one serves on),
    `target_gone` (the stage is empty or the alias deleted; the last model
    serves on), `feed_lost` (polling the lookup meanwhile) and `feed_back`."""

    kind: str
    version: int | None
    detail: str
    error: BaseException | None = None


class NothingServed(LookupError):
    """No version has been loaded yet (nothing in the stage, or not loaded yet)."""


class ModelWatcher:
    def __init__(self, model: str, loader: Callable[[Path], Any], *, stage: str | None = None,
                 alias: str | None = None, registrar_url: str | None = None, projector_url: str | None = None,
                 token: str | Callable[[], str] | None = None, cache_dir: Path | None = None, poll_interval: float = 5.0,
                 retry_failed_after: float = 60.0, on_event: Callable[[WatcherEvent], None] | None = None,
                 instance: str | None = None, report_serving: bool = True):
        """Follow `stage` or `alias` of `model`. URLs and token as `Client`
        takes them (MODELOG_* variables by default); `token` may also be a
        function giving a fresh one, asked before each connection of the feed
        (which ends when its token expires) and each download. `cache_dir` is the
        watcher's own (default: a temporary one, removed by stop()); it keeps
        the current version's files and the previous one's. A version that
        failed is tried again after `retry_failed_after` seconds, or at once if
        the target moves on and back. `instance` names this process in its
        serving reports (default: hostname-pid); `report_serving=False` sends none."""
        self.name, self.loader, self.on_event = model, loader, on_event
        self.poll_interval, self.retry_failed_after = poll_interval, retry_failed_after
        self._own_cache = cache_dir is None
        self.cache_dir = Path(cache_dir or tempfile.mkdtemp(prefix="modelog-watcher-"))
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._token = token
        fixed = None if callable(token) else token
        self._reader = Client(registrar_url, projector_url, token=fixed)  # the follower thread's
        self._fetcher = Client(registrar_url, projector_url, token=fixed)  # the loader thread's
        self._reporter = Client(registrar_url, projector_url, timeout_s=10, token=fixed)  # the loader's reports
        self.host = socket.gethostname()
        self.instance = instance or f"{self.host}-{os.getpid()}"
        self._reports = report_serving
        self._follows = f"alias:{alias}" if alias else f"stage:{stage}"
        self._reported: tuple[int, str] | None = None  # what the registry was last told this instance serves
        self.last_report_error: Exception | None = None  # why the last report failed, until one succeeds
        self._follower = TargetFollower(self._reader.projector, model, stage, alias, self._aim)
        self._served: Served | None = None
        self._previous: Served | None = None
        self._target: Any = None  # a Target (a SplitWatcher's: a split's Plan)
        self._failed: tuple[Any, float] | None = None  # the last target that failed, and when
        self._changed = threading.Condition()  # a new target, a swap, or stop
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.last_error: WatcherEvent | None = None  # the last `failed` event, until a swap succeeds
        self.feed_connected = False  # True while the change feed is open
        self._feed_lost = False

    # -- what a request uses ---------------------------------------------------

    @property
    def model(self) -> Any:
        """The current model; a request keeps the object it got for as long as it runs."""
        return self.served.model

    @property
    def served(self) -> Served:
        served = self._served
        if served is None:
            raise NothingServed(f"no version of {self.name} is loaded yet")
        return served

    @property
    def version(self) -> int | None:
        served = self._served
        return served.version if served else None

    @contextlib.contextmanager
    def serving(self) -> Iterator[Any]:
        """`with watcher.serving() as model:` one request's model, unchanged until it ends."""
        yield self.model

    def wait_for(self, version: int | None = None, timeout_s: float = 60.0) -> bool:
        """Wait until a model (or `version`) is served; False if the time ran out."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self._served is not None and version in (None, self._served.version), timeout_s)

    # -- running ---------------------------------------------------------------

    def start(self) -> "ModelWatcher":
        for run, role in ((self._follow, "follower"), (self._load, "loader")):
            thread = threading.Thread(target=run, name=f"modelog-watcher-{self.name}-{role}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)
        self._reader.close()
        self._fetcher.close()
        self._reporter.close()
        if self._own_cache:
            shutil.rmtree(self.cache_dir, ignore_errors=True)

    def __enter__(self) -> "ModelWatcher":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the follower thread ---------------------------------------------------

    def _follow(self) -> None:
        while not self._stopping.is_set():
            try:
                self._authorize(self._reader)
                self._follower.follow_feed(self._feed_opened, self._stopping.is_set)
                self._stopping.wait(0.2)  # the feed ended (its token's expiry): open it again
                continue
            except Exception as error:  # whatever the feed raised, polling takes over
                self.feed_connected = False
                if not self._feed_lost and not self._stopping.is_set():
                    self._feed_lost = True
                    self._report("feed_lost", None, f"change feed unreachable ({error!r}); polling the "
                                 f"lookup every {self.poll_interval:g}s")
            with contextlib.suppress(Exception):  # the lookup may be down too: the next poll tries again
                self._follower.refresh()
            self._stopping.wait(self.poll_interval)  # then the feed is tried again

    def _feed_opened(self) -> None:
        if self._feed_lost:
            self._feed_lost = False
            self._report("feed_back", None, "change feed connected again")
        self.feed_connected = True

    def _aim(self, target: Target | None) -> None:
        """The follower's answer: what should be served now."""
        with self._changed:
            gone = target is None and self._target is not None
            self._target = target
            self._changed.notify_all()
        if gone:
            self._report("target_gone", self.version, "nothing to serve there now; the last model serves on")

    # -- the loader thread -----------------------------------------------------

    def _load(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._stopping.is_set() or self._wanted() is not None,
                                       timeout=1.0)
                if self._stopping.is_set():
                    return
                target = self._wanted()
            if target is not None:
                self._serve(target)

    def _wanted(self) -> Target | None:
        """The target, if it is not served yet and did not just fail."""
        target, served = self._target, self._served
        if target is None or (served and (served.version, served.sha256) == (target.version, target.sha256)):
            return None
        if self._failed and self._failed[0] == target and time.monotonic() < self._failed[1]:
            return None
        return target

    def _serve(self, target: Target) -> None:
        previous = self._previous
        if previous and (previous.version, previous.sha256) == (target.version, target.sha256):
            # Served again from now: its report says since when.
            self._swap(replace(previous, since=datetime.now(timezone.utc)), "back to the previous version, still loaded")
            return
        destination = self.cache_dir / f"v{target.version}-{target.sha256[:12]}"
        try:
            _remove(destination)
            started = time.monotonic()
            self._authorize(self._fetcher)
            path = self._fetcher.download(self.name, target.version, destination)
            loaded = self.loader(path)
            if self._target != target:  # moved on meanwhile: the next round loads the new one
                _remove(destination)
                return
        except Exception as error:  # a download or loader failure must not stop serving
            _remove(destination)
            self._failed = (target, time.monotonic() + self.retry_failed_after)
            self.last_error = self._report("failed", target.version, f"not swapped in: {error}", error)
            return
        self._swap(Served(target.version, target.sha256, loaded, path),
                   f"downloaded and loaded in {time.monotonic() - started:.2f}s")

    def _swap(self, new: Served, how: str) -> None:
        with self._changed:
            old, self._served = self._served, new
            self._previous = old
            self.last_error, self._failed = None, None
        self._report("swapped", new.version, f"now serving version {new.version} (was "
                     f"{old.version if old else 'none'}): {how}")
        self._report_serving(new)
        keep = {new.path, *([old.path] if old else [])}
        for entry in self.cache_dir.iterdir():
            if entry not in keep:
                _remove(entry)
        with self._changed:  # waiters wake once the swap is reported and the cache tidied
            self._changed.notify_all()

    def _serving_target(self) -> str:
        """What this watcher follows, as its serving reports say it."""
        return self._follows

    def _report_serving(self, served: Served) -> None:
        """Tell the registry what this instance serves, if that changed since it
        was last told. A failure is logged; the next swap tries again."""
        now = (served.version, self._serving_target())
        if not self._reports or now == self._reported:
            return
        try:
            self._authorize(self._reporter)
            self._reporter.report_serving(
                self.name, served.version, instance=self.instance, since=served.since, host=self.host,
                target=now[1], wait=False,
                idempotency_key=f"serving {self.instance} {served.version} {served.since.isoformat()} {now[1]}")
        except Forbidden as error:  # the token lacks the role: asking again on every swap only adds denials
            self._reports = False
            log.warning("%s: serving reports off for instance %s, the token may not send them: %s",
                        self.name, self.instance, error)
            return
        except Exception as error:  # the registry being unreachable must not stop serving
            self.last_report_error = error
            log.warning("%s: the registry was not told that instance %s serves version %s (told on the next "
                        "swap): %s", self.name, self.instance, served.version, error)
            return
        self._reported, self.last_report_error = now, None

    def _authorize(self, client: Client) -> None:
        """A fresh token from the caller's function, if it gave one."""
        if callable(self._token):
            bearer = f"Bearer {self._token()}"
            client.registrar.headers["Authorization"] = client.projector.headers["Authorization"] = bearer

    def _report(self, kind: str, version: int | None, detail: str,
                error: BaseException | None = None) -> WatcherEvent:
        event = WatcherEvent(kind, version, detail, error)
        log.log(logging.WARNING if kind in ("failed", "feed_lost") else logging.INFO,
                "%s %s: %s", self.name, kind, detail)
        if self.on_event:
            try:
                self.on_event(event)
            except Exception:  # a faulty callback must not stop the watcher
                log.exception("on_event raised for %s", event)
        return event


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
