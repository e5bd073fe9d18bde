"""The production worker (`python -m worker`) as a process of its own: its memory can be read, it can be
stopped with SIGTERM as an orchestrator stops it, and its log can be searched afterwards."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.harness import codec_env

# A worker that has not stopped this long after SIGTERM is killed (and the time reported as such).
STOP_LIMIT_SECONDS = 30.0
# Core's warning for a workflow task that took longer than 5 s ([TMPRL1104]).
SLOW_TASK_MARKER = "Workflow task duration exceeded"
# Core's gauge of the workflows the worker keeps in its cache.
STICKY_CACHE_METRIC = "temporal_sticky_cache_size"


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

    def metric(self, name: str) -> float | None:
        """The worker's Prometheus metric `name` (summed over its label sets), None before it serves one."""
        found = re.search(r"metrics at (http://[0-9.:]+/metrics)", self.log.read_text(errors="replace"))
        if found is None:
            return None
        with urllib.request.urlopen(found.group(1), timeout=5) as answer:
            lines = answer.read().decode().splitlines()
        values = [float(line.rsplit(" ", 1)[1]) for line in lines if re.match(rf"{name}(\{{| )", line)]
        return sum(values) if values else None

    async def wait_cached(self, count: int, limit_seconds: float) -> tuple[float, int]:
        """Wait until the worker caches `count` workflows (it has taken each one's first task: a create
        answers before that, from its own write), or until the cache stops growing for 10 s. Returns
        (seconds waited, workflows cached)."""
        started = time.perf_counter()
        cached, grew_at = 0, started
        while time.perf_counter() - started < limit_seconds:
            now_cached = int(self.metric(STICKY_CACHE_METRIC) or 0)
            if now_cached >= count:
                return time.perf_counter() - started, now_cached
            if now_cached > cached:
                cached, grew_at = now_cached, time.perf_counter()
            elif time.perf_counter() - grew_at > 10:
                break
            await asyncio.sleep(0.5)
        return time.perf_counter() - started, cached

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
