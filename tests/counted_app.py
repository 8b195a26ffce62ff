"""An ASGI app that counts the requests reaching it: the fast paths' tests
put it between a fast path and the FastAPI app, to tell which one answered."""

from fastapi import FastAPI


class Counted:
    def __init__(self, app: FastAPI):
        self.app, self.state, self.calls = app, app.state, 0

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)
