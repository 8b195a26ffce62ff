"""Background work a service cannot live without."""

import asyncio
import logging
import os
import signal
from collections.abc import Coroutine

log = logging.getLogger("modelog")


def start_critical(work: Coroutine, what: str) -> asyncio.Task:
    """Run `work` in the background; if it fails, stop the process, so a
    supervisor restarts it rather than a healthy-looking shell staying up."""
    task = asyncio.create_task(work, name=what)

    def stop_process_if_failed(done: asyncio.Task) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.error("%s stopped", what, exc_info=done.exception())
            os.kill(os.getpid(), signal.SIGTERM)

    task.add_done_callback(stop_process_if_failed)
    return task
