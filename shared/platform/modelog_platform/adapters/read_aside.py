"""A log read beside a caller that is not a coroutine: `modelog audit verify`
proves and checks records (in worker processes where the machine has cores
to spare) while a thread goes on reading the next ones from Kafka, rather
than reading the whole log first."""

import asyncio
import queue
import threading
from collections.abc import Iterator

from aiokafka import ConsumerRecord

from modelog_platform.adapters.log_reader import Progress, partition_runs
from modelog_platform.settings import EngineEndpoints

WAITING = 4  # lists read ahead of the caller at most: bounds the memory held


def partition_runs_read_aside(endpoints: EngineEndpoints, topic: str, ranges: dict[int, tuple[int, int]],
                              size: int, progress: Progress = lambda done, total: None,
                              ) -> Iterator[list[ConsumerRecord]]:
    """What log_reader.partition_runs hands over, read by a thread meanwhile.
    An error of the reading is raised here; a caller that stops early stops
    the reading."""
    handed: queue.Queue[list[ConsumerRecord] | BaseException | None] = queue.Queue(maxsize=WAITING)
    stopped = threading.Event()

    def hand(item: list[ConsumerRecord] | BaseException | None) -> bool:
        """Put `item` in the queue unless the caller stopped; whether it did."""
        while not stopped.is_set():
            try:
                handed.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    async def read() -> None:
        async for run in partition_runs(endpoints, topic, ranges, size, progress):
            if not hand(run):
                return

    def reader() -> None:
        try:
            asyncio.run(read())
        except BaseException as error:
            hand(error)
        else:
            hand(None)

    thread = threading.Thread(target=reader, name=f"reading {topic}", daemon=True)
    thread.start()
    try:
        while (item := handed.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stopped.set()
        thread.join()
