"""Services take what exists at startup out of the cycle collector's full
passes, once the app has started and not before."""

import gc

from modelog_platform.web import FrozenOnceStarted


async def test_what_exists_once_the_app_has_started_is_frozen_then_and_not_before():
    frozen_during_startup, sent = [], []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            frozen_during_startup.append(gc.get_freeze_count())
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "http.response.start", "status": 204, "headers": []})

    async def receive():
        return {"type": "lifespan.startup"}

    async def send(message):
        sent.append(message["type"])

    gc.unfreeze()
    try:
        await FrozenOnceStarted(app)({"type": "lifespan"}, receive, send)
        assert frozen_during_startup == [0] and gc.get_freeze_count() > 0
        await FrozenOnceStarted(app)({"type": "http"}, receive, send)
        assert sent == ["lifespan.startup.complete", "http.response.start"]
    finally:
        gc.unfreeze()
