"""The production worker (`python -m worker`) as a process of its own: its memory can be read, it can be
stopped with SIGTERM as an orchestrator stops it, and its log can be searched afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.harness import codec_env

# A worker that has not stopped this long after SIGTERM is killed (and the time reported as such).
STOP_LIMIT_SECONDS = 30.0
# Core's warning for a workflow task that took longer than 5 s ([TMPRL1104]).
SLOW_TASK_MARKER = "Workflow task duration exceeded"


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path
    started: float

    @property
    def ps(self) -> psutil.Process:
        return psutil.Process(self.process.pid)

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def stop(self) -> tuple[float, bool]:
        """SIGTERM, then wait: (seconds until the process was gone, whether it stopped by itself)."""
        if self.process.poll() is not None:
            return 0.0, True
        started = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_LIMIT_SECONDS)
            return time.perf_counter() - started, True
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            return time.perf_counter() - started, False

    def count(self, marker: str) -> int:
        return sum(line.count(marker) for line in self.log.read_text(errors="replace").splitlines())


def start_worker(
    database_url: str, temporal: str, task_queue: str, open_callbacks: int, log: Path
) -> WorkerProcess:
    """The worker with the production settings for `open_callbacks` (config/worker_sizing.py)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CALLBACKS_")},
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": temporal,
        "CALLBACKS_TASK_QUEUE": task_queue,
        "CALLBACKS_WORKER_OPEN_CALLBACKS": str(open_callbacks),
        "CALLBACKS_WORKER_METRICS_PORT": "0",
        "CALLBACKS_CALCOM_BASE_URL": "http://127.0.0.1:9",
        **codec_env(),
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    return WorkerProcess(process, log, time.perf_counter())
