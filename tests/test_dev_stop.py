"""`make dev` (`callbacks dev`) stops on Ctrl-C within 10 s whatever its workflows are doing, and leaves no
process behind: not the Temporal dev server, not the embedded PostgreSQL (which used to outlive it), and
no postmaster.pid. Twice: on a fresh stack with callbacks just created, and on the same stack started
again, while the restarted workflows catch up and one of them waits on a locked row.

A real `callbacks dev` process on free loopback ports, with its local folder in the test's tmp_path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from config import LOCAL_DATABASE
from devstack.postgres import postmaster_pid, stop_postmaster

# Two starts of the whole stack (the first with initdb) on a loaded 2-core machine take a while.
pytestmark = [pytest.mark.devserver, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parent.parent
STOP_WITHIN_SECONDS = 10.0
START_WITHIN_SECONDS = 180.0
BANNER = re.compile(r"CALLBACKS_API_URL=(\S+)\s+export CALLBACKS_API_KEY=(\S+)")
PORTS = (
    "DEV_TEMPORAL_PORT",
    "API_PORT",
    "API_METRICS_PORT",
    "CALCOM_FAKE_PORT",
    "NOTIFY_SMTP_SINK_PORT",
    "NOTIFY_SMS_FAKE_PORT",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dev_env(local: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CALLBACKS_", "DATABASE_URL", "TEMPORAL_"))
    }
    env.update({f"CALLBACKS_{name}": str(free_port()) for name in PORTS})
    env.update(
        {
            "CALLBACKS_LOCAL_DIR": str(local),
            "CALLBACKS_DEV_TEMPORAL_UI_PORT": "0",
            "CALLBACKS_WORKER_METRICS_PORT": "0",
            "PYTHONWARNINGS": "ignore",
        }
    )
    return env


@contextlib.asynccontextmanager
async def dev_stack(local: Path, output: Path) -> AsyncIterator[tuple[subprocess.Popen[bytes], str, str]]:
    """`callbacks dev` until its banner is out: (process, API URL, admin key). Whatever the test leaves
    running is killed afterwards (a stack that did stop leaves nothing to kill)."""
    with output.open("ab") as log:
        process = subprocess.Popen(  # noqa: ASYNC220 (polled, never waited on in the loop)
            [sys.executable, "-m", "cli.main", "dev"],
            cwd=ROOT,
            env=dev_env(local),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + START_WITHIN_SECONDS
        while not (found := BANNER.search(_text(output))):
            assert process.poll() is None, f"`callbacks dev` ended: {_text(output)[-3000:]}"
            assert time.monotonic() < deadline, f"no banner: {_text(output)[-3000:]}"
            await asyncio.sleep(0.2)
        children = psutil.Process(process.pid).children(recursive=True)
        yield process, found.group(1), found.group(2)
    finally:
        if process.poll() is None:
            process.kill()
        for leftover in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()
        process.wait(10)
        stop_postmaster(local / "pgdata", "embedded_postgres" if os.geteuid() == 0 else None, 3.0)


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def running(pid: int) -> bool:
    """Alive, not merely waiting to be reaped (a zombie has exited; reaping it is its parent's job, and
    PostgreSQL's parent is init)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def interrupt_and_check(process: subprocess.Popen[bytes], pgdata: Path, output: Path) -> None:
    children = psutil.Process(process.pid).children(recursive=True)
    postmaster = postmaster_pid(pgdata)
    assert children, "the stack started no server of its own"
    assert postmaster is not None
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    while process.poll() is None and time.monotonic() - started < STOP_WITHIN_SECONDS:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    assert process.poll() is not None, f"still running {STOP_WITHIN_SECONDS} s after Ctrl-C"
    assert process.returncode == 0, (process.returncode, _text(output)[-3000:])
    left = [child.pid for child in children if running(child.pid)]
    assert not left, left
    assert not running(postmaster), "PostgreSQL outlived `callbacks dev`"
    assert not (pgdata / "postmaster.pid").exists()


async def test_ctrl_c_stops_make_dev_within_10_s_and_leaves_nothing_behind(tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    async with dev_stack(local, tmp_path / "dev-1.out") as (process, api_url, admin_key):
        # Besides the demo callbacks in every state: urgent ones whose workflows are just starting.
        async with httpx.AsyncClient(
            base_url=api_url, headers={"Authorization": f"Bearer {admin_key}"}
        ) as api:
            branch = (await api.get("/v1/branches")).json()["items"][0]["id"]
            for n in range(5):
                created = await api.post(
                    "/v1/callbacks",
                    json={
                        "branch_id": branch,
                        "customer_name": f"Erika {n}",
                        "phone_number": "+49 30 1234567",
                        "priority": "urgent",
                    },
                )
                assert created.status_code == 201, created.text
        await interrupt_and_check(process, local / "pgdata", tmp_path / "dev-1.out")

    # Started again, while the restarted workflows catch up, one of them is in the middle of a write
    # that waits for a row lock (held here): the worker cannot finish it, and must not wait for it.
    async with dev_stack(local, tmp_path / "dev-2.out") as (process, api_url, admin_key):
        socket_dir = (local / "pgdata" / "postmaster.pid").read_text().splitlines()[4]
        holder = await asyncpg.connect(host=socket_dir, user="postgres", database=LOCAL_DATABASE)
        try:
            headers = {"Authorization": f"Bearer {admin_key}"}
            async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=30) as api:
                listed = await api.get("/v1/callbacks", params={"status": ["pending", "assigned"]})
                target = listed.json()["items"][0]["id"]
                await holder.execute("BEGIN")
                await holder.execute(
                    "SELECT 1 FROM callback_requests WHERE id = $1 FOR UPDATE", uuid.UUID(target)
                )
                waiting = asyncio.create_task(
                    api.post(f"/v1/callbacks/{target}/priority", json={"priority": "urgent"})
                )
                await asyncio.sleep(1.0)
                assert not waiting.done()
                await interrupt_and_check(process, local / "pgdata", tmp_path / "dev-2.out")
                waiting.cancel()
        finally:
            with contextlib.suppress(Exception):
                await holder.close(timeout=1)
