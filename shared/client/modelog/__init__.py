"""modelog's Python SDK: `from modelog import Client` (and `ModelWatcher` for serving).

    from modelog import Client

    with Client() as registry:          # MODELOG_REGISTRAR_URL, MODELOG_TOKEN, ...
        registry.request_transition("fraud-detector", 3, "Staging")

Every refusal is a `ModelogError` (or a subclass) carrying the registry's code.
"""

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

__all__ = ["Client", "ClientSettings", "Conflict", "DigestMismatch", "Forbidden", "ModelWatcher", "ModelogError",
           "NotFound", "NothingServed", "Refused", "SplitWatcher", "StillPending", "WatcherEvent"]
