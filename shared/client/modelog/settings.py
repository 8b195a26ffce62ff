"""Where the registry is, read from the same MODELOG_* variables the platform uses.

The client stays free of the platform's settings library: a serving system or
a training job installs only the SDK, so this reads os.environ itself.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass

# The local stack's ports (`modelog up`); the platform's ServicePorts starts
# from these same numbers.
DEFAULT_PORTS = {"registrar": 8000, "promoter": 8001, "projector": 8002, "auditor": 8003, "sentinel": 8004}
DEFAULT_HOST = "127.0.0.1"


def service_url(service: str, environ: Mapping[str, str] = os.environ) -> str:
    """MODELOG_<SERVICE>_URL, else http://MODELOG_HOST:MODELOG_<SERVICE>_PORT."""
    prefix = f"MODELOG_{service.upper()}"
    if url := environ.get(f"{prefix}_URL"):
        return url.rstrip("/")
    host = environ.get("MODELOG_HOST", DEFAULT_HOST)
    if host in ("0.0.0.0", "::"):  # a service's listen-on-all address is no place to connect to
        host = DEFAULT_HOST
    return f"http://{host}:{environ.get(f'{prefix}_PORT', DEFAULT_PORTS[service])}"


@dataclass(frozen=True)
class ClientSettings:
    """The registrar (writes), the projector (reads), the auditor (the trail), the
    caller's bearer token (MODELOG_TOKEN), and how long a call keeps asking
    while the registry is unavailable (MODELOG_RETRY_FOR_S, seconds; 0: never)."""

    registrar_url: str
    projector_url: str
    auditor_url: str
    token: str | None
    retry_for_s: float = 60.0

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> "ClientSettings":
        return cls(registrar_url=service_url("registrar", environ),
                   projector_url=service_url("projector", environ),
                   auditor_url=service_url("auditor", environ),
                   token=environ.get("MODELOG_TOKEN") or None,
                   retry_for_s=float(environ.get("MODELOG_RETRY_FOR_S", "60")))
