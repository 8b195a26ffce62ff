"""modelog's Python SDK: `from modelog import Client` (and `ModelWatcher` for serving).

    from modelog import Client

    with Client() as registry:          # MODELOG_REGISTRAR_URL, MODELOG_TOKEN, ...
        registry.request_transition("fraud-detector", 3, "Staging")

Every refusal is a `ModelogError` (or a subclass) carrying the registry's code.
"""

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelog.client import (
        Client,
        Conflict,
        DigestMismatch,
        Forbidden,
        ModelogError,
        NotFound,
        Refused,
        StillPending,
    )
    from modelog.settings import ClientSettings
    from modelog.split_watcher import SplitWatcher
    from modelog.watcher import ModelWatcher, NothingServed, WatcherEvent

# Each name is imported on first use: the services import modelog.settings
# alone, and need not pay for the HTTP client's import at every start.
_HOME = {
    **dict.fromkeys(("Client", "Conflict", "DigestMismatch", "Forbidden", "ModelogError", "NotFound", "Refused",
                     "StillPending"), "modelog.client"),
    "ClientSettings": "modelog.settings",
    "SplitWatcher": "modelog.split_watcher",
    **dict.fromkeys(("ModelWatcher", "NothingServed", "WatcherEvent"), "modelog.watcher"),
}

__all__ = ["Client", "ClientSettings", "Conflict", "DigestMismatch", "Forbidden", "ModelWatcher", "ModelogError",
           "NotFound", "NothingServed", "Refused", "SplitWatcher", "StillPending", "WatcherEvent"]


def __getattr__(name: str) -> object:
    if name not in _HOME:
        raise AttributeError(f"module 'modelog' has no attribute {name!r}")
    value = getattr(import_module(_HOME[name]), name)
    globals()[name] = value
    return value
