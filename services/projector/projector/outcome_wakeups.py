"""Outcomes pushed to whoever waits for them: the live projection announces the
outcomes a batch completes with one NOTIFY in the transaction that writes them
(PostgreSQL delivers it when, and only if, that transaction commits), and
every projector instance LISTENs, so a request waiting on one instance is
woken by a commit on another (multi-instance projectors share the partitions).

The instance whose projection committed the batch wakes its own waiters as
soon as the commit returns (`committed`), without waiting for the
notification to come round through PostgreSQL; the writer's answer is
usually waiting on that instance.

A waiter still looks again every `poll_s`: a notification sent while the
listening connection was down is never replayed, and the look catches that.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from uuid import UUID

import asyncpg

from modelog_platform.adapters.projection import Positioned
from projector import queries

log = logging.getLogger("modelog.projector")

CHANNEL = "modelog_outcomes"
RECONNECT_S = 1.0


# A notification's payload holds under 8,000 bytes: up to this many ids
# (36 characters and a separator each) go in one.
IDS_PER_NOTIFICATION = 200


def payloads(command_ids: Sequence[UUID]) -> list[str]:
    """The NOTIFY payloads that name `command_ids`: comma-separated, within the size limit."""
    return [",".join(str(command_id) for command_id in command_ids[start:start + IDS_PER_NOTIFICATION])
            for start in range(0, len(command_ids), IDS_PER_NOTIFICATION)]


def command_ids_in(payload: str) -> list[UUID]:
    """The ids a payload names; anything else in it is not ours and is left out."""
    ids = []
    for part in payload.split(","):
        try:
            ids.append(UUID(part))
        except ValueError:
            continue
    return ids


async def announce(conn: asyncpg.Connection, command_ids: Sequence[UUID]) -> None:
    """Inside the projection's transaction: these commands' outcomes are
    complete once it commits. One round trip for a batch's outcomes."""
    if command_ids:
        await conn.execute("SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload",
                           CHANNEL, payloads(command_ids))


class OutcomeWakeups:
    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]]):
        self.connect = connect
        self.waiting: dict[UUID, set[asyncio.Event]] = {}
        self.listening = asyncio.Event()  # set while notifications can arrive

    @contextmanager
    def waiter(self, command_id: UUID) -> Iterator[asyncio.Event]:
        """An event set when `command_id`'s outcome may have been committed.
        Taken before the first look, so a commit between look and wait still wakes it."""
        woken = asyncio.Event()
        self.waiting.setdefault(command_id, set()).add(woken)
        try:
            yield woken
        finally:
            waiters = self.waiting.get(command_id)
            if waiters is not None:
                waiters.discard(woken)
                if not waiters:
                    del self.waiting[command_id]

    async def complete_outcome(self, pool: asyncpg.Pool, command_id: UUID, wait_s: float, poll_s: float,
                               with_state: bool = False) -> dict | None:
        """`command_id`'s outcome once its whole decision is projected, waiting
        up to `wait_s` for a commit to wake us; None if it is not complete by
        then. A look every `poll_s` covers notifications lost while not listening."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        with self.waiter(command_id) as woken:
            while True:
                woken.clear()
                async with pool.acquire() as conn:
                    outcome = await queries.get_outcome(conn, command_id, with_state=with_state)
                if outcome and outcome["complete"]:
                    return outcome
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), min(remaining, poll_s))

    def _notified(self, _conn, _pid, _channel, payload: str) -> None:
        self._wake(command_ids_in(payload))

    def committed(self, batch: Sequence[Positioned]) -> None:
        """The projection's hook: this batch has committed here."""
        self._wake(p.event.command_id for p in batch if p.event.closes_decision)

    def _wake(self, command_ids: Iterable[UUID]) -> None:
        for command_id in command_ids:
            for woken in self.waiting.get(command_id, ()):
                woken.set()

    def _wake_all(self) -> None:
        for waiters in self.waiting.values():
            for woken in waiters:
                woken.set()

    async def run(self) -> None:
        """Listen for as long as the service runs, reconnecting when the connection drops."""
        while True:
            try:
                conn = await self.connect()
            except Exception as error:  # PostgreSQL down or restarting: waiters poll meanwhile
                log.warning("outcome notifications: cannot connect (%s); waiters poll meanwhile", error)
                await asyncio.sleep(RECONNECT_S)
                continue
            try:
                await conn.add_listener(CHANNEL, self._notified)
                self.listening.set()
                self._wake_all()  # anything committed before we listened: look again
                while not conn.is_closed():
                    await asyncio.sleep(RECONNECT_S)
                log.warning("outcome notifications: connection lost; reconnecting")
            except Exception as error:  # the connection broke: asyncpg's InterfaceError included
                log.warning("outcome notifications: %s; reconnecting", error)
            finally:
                self.listening.clear()
                self._wake_all()
                if not conn.is_closed():
                    conn.terminate()  # no round trip that could fail or hang on a broken connection
            await asyncio.sleep(RECONNECT_S)
