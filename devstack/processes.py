"""The engine's production processes as children: the worker (`python -m worker`) and the API
(`python -m cli.main api`), started with an explicit environment and stopped (or killed) by pid.

The benchmarks, the crash test and the chaos runs start them this way, so what they measure or break is
the real process with its real wiring, not an in-process stand-in.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Literal

import httpx

# The checkout the children run from: its code, not an installed copy, is what they import.
ROOT = Path(__file__).resolve().parent.parent


def engine_env(
    *,
    database_url: str,
    temporal_address: str,
    task_queue: str,
    extra: Mapping[str, str] | None = None,
    inherit_engine_settings: bool = False,
) -> dict[str, str]:
    """The environment of a worker or API child: this process's environment (without its `CALLBACKS_*`
    settings unless `inherit_engine_settings`), the connections, a free port for each /metrics, and
    `extra` (codec keys, Cal.com, SMTP, tunables) on top."""
    base = {
        name: value
        for name, value in os.environ.items()
        if inherit_engine_settings or not name.startswith("CALLBACKS_")
    }
    return {
        **base,
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": temporal_address,
        "CALLBACKS_TASK_QUEUE": task_queue,
        # A free port for each process's /metrics: several run beside each other on this machine.
        "CALLBACKS_WORKER_METRICS_PORT": "0",
        "CALLBACKS_API_METRICS_PORT": "0",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        "PYTHONWARNINGS": "ignore",
        **(extra or {}),
    }


def worker_command() -> list[str]:
    return [sys.executable, "-m", "worker"]


def api_command(port: int) -> list[str]:
    return [sys.executable, "-m", "cli.main", "api", "--host", "127.0.0.1", "--port", str(port)]


@contextlib.contextmanager
def child_process(
    command: list[str],
    env: Mapping[str, str],
    *,
    log: Path | None = None,
    stop: Literal["kill", "terminate"] = "kill",
    stop_seconds: float = 30,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` until the block ends; its output goes to `log` (appended) or nowhere. At the end
    it is killed (SIGKILL, the default) or stopped (SIGTERM, SIGKILL after `stop_seconds`) unless it has
    already exited."""
    with contextlib.ExitStack() as files:
        output = files.enter_context(log.open("ab")) if log is not None else subprocess.DEVNULL
        process = subprocess.Popen(command, cwd=ROOT, env=dict(env), stdout=output, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL if stop == "kill" else signal.SIGTERM)
            try:
                process.wait(timeout=stop_seconds)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


async def wait_until_ready(url: str, process: subprocess.Popen[bytes], *, within_seconds: float = 60) -> None:
    """Poll `url` until it answers 200; fail early when the process has died."""
    deadline = asyncio.get_running_loop().time() + within_seconds
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{url}: the process exited with {process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(url)).status_code == 200:
                    return
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"{url} did not become ready within {within_seconds:g} s")
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def api_process(
    env: Mapping[str, str],
    port: int,
    *,
    log: Path | None = None,
    stop: Literal["kill", "terminate"] = "terminate",
) -> AsyncIterator[str]:
    """The API as its own process on `port`; yields its base URL once `/readyz` answers."""
    with child_process(api_command(port), env, log=log, stop=stop) as process:
        url = f"http://127.0.0.1:{port}"
        await wait_until_ready(f"{url}/readyz", process)
        yield url
