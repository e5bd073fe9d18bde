"""Ctrl-C stops `make dev` within `STOP_WITHIN_SECONDS`, whatever the workflows are doing, and leaves no
process behind.

The stop runs in phases, each with its own deadline (devstack/stack.py): the worker stops polling at once
and gives its activities `WORKER_GRACE_SECONDS` (then they are cancelled) while the API stops taking
requests; then the shared parts close; then the Temporal dev server and PostgreSQL stop side by side
(SIGTERM, then SIGKILL; a fast shutdown, then an immediate one). Should anything still hang (a worker
waiting on its core, a thread), a watchdog started by the first Ctrl-C kills the servers this process
started and ends the process when the time is up. A second Ctrl-C does that at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable

from temporalio.worker import Worker

log = logging.getLogger("callbacks.dev")

STOP_WITHIN_SECONDS = 10.0
# What each phase may take; together well inside STOP_WITHIN_SECONDS, the watchdog fires a bit before it.
WORKER_GRACE_SECONDS = 2.0
WORKER_STOP_SECONDS = 3.5
PARTS_STOP_SECONDS = 1.5
SERVERS_STOP_SECONDS = 3.0
HTTP_DRAIN_SECONDS = 1.5
WATCHDOG_SECONDS = STOP_WITHIN_SECONDS - 1.0


class StopRequested(Exception):
    """Ctrl-C came while the stack was starting: stop what has started, start nothing more."""


class Stopper:
    """The signals of `make dev`: the first SIGINT/SIGTERM asks for the stop and arms the watchdog, a
    second one stops hard. `kill_hard` callbacks (registered as servers start) must not block."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self._kills: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._done = threading.Event()

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._on_signal)

    def on_hard_stop(self, kill: Callable[[], None]) -> None:
        with self._lock:
            self._kills.append(kill)

    def check(self) -> None:
        """Between the steps of starting up: raise `StopRequested` once a stop was asked for."""
        if self.requested.is_set():
            raise StopRequested

    def finished(self) -> None:
        """Everything stopped in order: the watchdog stands down."""
        self._done.set()

    def _on_signal(self) -> None:
        if self.requested.is_set():
            print("\nstopping now", flush=True)
            self.hard_stop()
        self.requested.set()
        threading.Thread(target=self._watchdog, name="dev-stop-watchdog", daemon=True).start()

    def _watchdog(self) -> None:
        if not self._done.wait(WATCHDOG_SECONDS):
            log.warning("the stack did not stop within %.0f s: killing what is left", WATCHDOG_SECONDS)
            self.hard_stop()

    def hard_stop(self) -> None:
        """Kill the servers this process started and end it (from any thread)."""
        with self._lock:
            kills = list(reversed(self._kills))
        for kill in kills:
            with contextlib.suppress(Exception):
                kill()
        sys.stdout.flush()
        os._exit(130)


async def bounded(name: str, within: float, work: Awaitable[object]) -> None:
    """Await `work` for at most `within` seconds; past that it is abandoned (and logged), not awaited."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=within)
    if not done:
        log.warning("%s did not stop within %.1f s: going on without it", name, within)
        task.cancel()
    elif task.exception() is not None:
        log.warning("%s stopped with an error: %s", name, task.exception())


async def stop_worker(worker: Worker, running: asyncio.Task[None]) -> None:
    """Stop polling at once; activities get the worker's graceful timeout, then are cancelled."""
    await bounded("the worker", WORKER_STOP_SECONDS, worker.shutdown())
    if not running.done():
        running.cancel()


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a server started in a session of its own, with whatever it started."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


async def stop_process(process: subprocess.Popen[bytes], within: float) -> None:
    """SIGTERM (to its process group), then SIGKILL if it is still there after `within` seconds."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + within
    while process.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110 (a child, no event)
        await asyncio.sleep(0.05)
    if process.poll() is None:
        log.warning("process %d did not stop within %.1f s: killed", process.pid, within)
        kill_group(process)
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(process.wait, 1.0)
