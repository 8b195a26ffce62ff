"""Asking the registry again while it is briefly unavailable.

The registry answers 503 with Retry-After while an engine under it is down
(the Kafka broker, PostgreSQL, the artifact store: docs/operations.md), and a
connection fails or drops while a service restarts. Asking again is safe for
a read. It is safe for a write because every SDK write carries an
Idempotency-Key: the registrar makes the same key into the same command,
which is decided once however often it is sent (docs/idempotency.md). A 503
the broker gave may mean the first attempt reached the log after all; the
retry is then answered with that attempt's outcome.
"""

import logging
import time
from collections.abc import Callable

import httpx

log = logging.getLogger("modelog.client")

FIRST_PAUSE_S = 0.5
LONGEST_PAUSE_S = 5.0
LONGEST_RETRY_AFTER_S = 30.0  # a server asking for longer is not "briefly" unavailable
# Failures where the request may be sent again as it is: the connection could
# not be made, broke, or an answer did not come in time.
LOST = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)


class Retrying:
    """Sends a request again on a 503 or a lost connection, pausing as the
    server asks (Retry-After) or backing off, until `for_s` has passed; then
    the last answer (or error) is the caller's. `for_s=0` never retries."""

    def __init__(self, for_s: float, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.for_s, self.sleep, self.clock = for_s, sleep, clock

    def send(self, request: Callable[[], httpx.Response], what: str) -> httpx.Response:
        """`request()` sends it (again: reopening any file it uploads); `what` names it in the log."""
        deadline, backoff = self.clock() + self.for_s, FIRST_PAUSE_S
        while True:
            try:
                response = request()
            except LOST as lost:
                pause, why = backoff, f"{type(lost).__name__}: {lost}"
                if self.clock() + pause > deadline:
                    raise
            else:
                if response.status_code != 503:
                    return response
                pause, why = retry_after(response, backoff), f"503 {error_code(response)}"
                if self.clock() + pause > deadline:
                    return response
            log.warning("%s: the registry is unavailable (%s); asking again in %.1fs", what, why, pause)
            self.sleep(pause)
            backoff = min(backoff * 2, LONGEST_PAUSE_S)


def retry_after(response: httpx.Response, otherwise: float) -> float:
    """The pause the server asked for, in seconds (bounded), or `otherwise`."""
    try:
        asked = float(response.headers["retry-after"])
    except (KeyError, ValueError):  # absent, or an HTTP date: not worth a clock comparison here
        return otherwise
    return min(max(asked, 0.0), LONGEST_RETRY_AFTER_S)


def error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "service_unavailable"
