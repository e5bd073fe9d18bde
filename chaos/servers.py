"""A Temporal dev server that can be killed and started again on the same port and database file, as a
crashed and restarted Temporal cluster would be (the `temporal-server-kill` scenario)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from devstack.harness import stop_process
from devstack.temporal import register_search_attributes, start_dev_server, wait_for_server


class DevServer:
    """`temporal server start-dev --db-filename …` (SQLite in WAL mode, devstack/temporal.py): its
    workflows outlive a SIGKILL of the server."""

    def __init__(self, port: int, db_filename: Path, log: Path) -> None:
        self.port = port
        self.db_filename = db_filename
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> str:
        """Start (or start again) and wait until it answers; returns its address."""
        self.process = start_dev_server(
            port=self.port, ui_port=None, db_filename=self.db_filename, log=self.log
        )
        client = await wait_for_server(self.address, within_seconds=90)
        await register_search_attributes(client)
        return self.address

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing flushed beyond what SQLite already has."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    async def stop(self) -> None:
        if self.process is not None:
            await stop_process(self.process)
