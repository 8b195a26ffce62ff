"""Outcomes pushed to whoever waits for them: the live projection announces a
command's completed outcome with NOTIFY in the transaction that writes it
(PostgreSQL delivers it when, and only if, that transaction commits), and
every projector instance LISTENs, so a request waiting on one instance is
woken by a commit on another (multi-instance projectors share the partitions).

A waiter still looks again every `poll_s`: a notification sent while the
listening connection was down is never replayed, and the look catches that.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from uuid import UUID

import asyncpg

log = logging.getLogger("modelog.projector")

CHANNEL = "modelog_outcomes"
RECONNECT_S = 1.0


async def announce(conn: asyncpg.Connection, command_id: UUID) -> None:
    """Inside the projection's transaction: `command_id`'s outcome is complete once this commits."""
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(command_id))


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

    def _notified(self, _conn, _pid, _channel, payload: str) -> None:
        try:
            command_id = UUID(payload)
        except ValueError:
            return
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
