"""Serving an ASGI app inside the current event loop: the fake Cal.com, the local sinks and the API of
`callbacks dev` all run this way beside each other, and tests start and stop one per test."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn


class EmbeddedServer(uvicorn.Server):
    """uvicorn for embedding: no signal handlers (the embedding process — pytest, `callbacks dev` — owns
    them), and a stop that takes milliseconds instead of uvicorn's 0.1 s polls."""

    def __init__(self, config: uvicorn.Config, drain_seconds: float = 5.0) -> None:
        super().__init__(config)
        self._wake = asyncio.Event()
        self._drain_seconds = drain_seconds

    def stop(self) -> None:
        self.should_exit = True
        self._wake.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        deadline = time.monotonic() + self._drain_seconds
        # uvicorn offers no event for "all connections closed": poll briefly.
        while (self.server_state.connections or self.server_state.tasks) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.002)
        for server in self.servers:
            await server.wait_closed()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket with TCP_NODELAY (without it every response waits ~40 ms for a delayed
    ACK on loopback, because the response goes out in two writes)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    return sock


def _config(app: Any, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        http="h11",
        loop="asyncio",
    )


@contextlib.asynccontextmanager
async def serve_asgi(
    app: Any, host: str = "127.0.0.1", port: int = 0, *, drain_seconds: float = 5.0
) -> AsyncIterator[str]:
    """Serve `app` in this event loop on `host:port` (0 = a free port); yields its base URL. On exit, open
    requests get `drain_seconds` to finish."""
    sock = bind(host, port)
    server = EmbeddedServer(_config(app, host, port), drain_seconds)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError(f"the server could not start on {host}:{port}")
            await asyncio.sleep(0.005)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()


def serve_forever(app: Any, host: str, port: int) -> None:
    """Serve `app` in the foreground until Ctrl-C (a standalone process, e.g. the fake Cal.com)."""
    uvicorn.Server(_config(app, host, port)).run(sockets=[bind(host, port)])
