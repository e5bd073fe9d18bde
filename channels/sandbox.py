"""Tenant template overrides, rendered where they cannot hurt anybody else.

An override is configuration an admin typed into an API, not code we reviewed. Jinja's sandbox stops it
from reaching Python internals, but not from spending CPU or memory: `{% for a in range(99999) %}{% for b
in range(99999) %}…` runs for hours, and on the worker's event loop that would stall every tenant's
workflows. So an override renders in a child process (a few, started once and reused, each caching the
templates it compiled; a plain `python -c`, so it imports Jinja and this module, nothing of the parent),
with three bounds: a time limit (the child that overran is killed, alone), an output limit (rendering
stops at the cap) and a memory limit (RLIMIT_AS in the child). Going over a bound fails that one message
with a clear reason (`TemplateRefused`); another message waits at most one time limit for a free child.

`check_template` is the save-time check of the API: the syntax, no loops, macros or includes (a message's
summary line needs none of them), and a trial render within the same bounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, BinaryIO, cast

from jinja2 import Template, TemplateError, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

RENDER_TIMEOUT_SECONDS = 2.0
MAX_OUTPUT_CHARS = 4000
MEMORY_LIMIT_BYTES = 256 * 1024 * 1024
WORKERS = 2
# What a fresh interpreter importing Jinja may take on a busy machine (the one-off child of
# render_blocking only).
START_SECONDS = 10.0
# The child stops a render itself at the time limit; it is killed when it has not answered this much later.
KILL_GRACE = 1.0
# Constructs a summary line does not need and that make rendering time unbounded or depend on other files.
FORBIDDEN = {
    nodes.For: "loops",
    nodes.Macro: "macros",
    nodes.CallBlock: "call blocks",
    nodes.Include: "includes",
    nodes.Import: "imports",
    nodes.FromImport: "imports",
    nodes.Extends: "extends",
    nodes.Block: "blocks",
}


class TemplateRefused(Exception):
    """An override that could not be rendered. The message says why in our words; `detail` is what the
    template engine said, which may quote the template or the values (for the delivery log only).
    `unsafe`: it went over a bound or tried what the sandbox forbids, whatever the values (the save-time
    check refuses those); otherwise it failed on these values (an undefined attribute, a bad filter
    argument)."""

    def __init__(self, message: str, detail: str | None = None, *, unsafe: bool = True) -> None:
        super().__init__(message)
        self.detail = detail
        self.unsafe = unsafe


class _BoundedEnvironment(SandboxedEnvironment):
    """Jinja's sandbox, plus: `*` and `**` cannot build a value bigger than the output cap (`'x' *
    10**9` would exhaust memory before the output cap could look at it)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > 64:
                raise SecurityError("exponent too large")
            return left**right
        for size, count in ((left, right), (right, left)):
            sized = isinstance(size, str | list | tuple) and isinstance(count, int)
            if sized and len(size) * count > MAX_OUTPUT_CHARS:
                raise SecurityError("repetition too large")
        return left * right


_environment = _BoundedEnvironment(autoescape=False)


@lru_cache(maxsize=512)
def _compiled(source: str) -> Template:
    return _environment.from_string(source)


def _limit_memory(budget_bytes: int) -> None:
    """In the child: allow its address space to grow by `budget_bytes` beyond what it uses now."""
    try:
        import resource

        page = os.sysconf("SC_PAGE_SIZE")
        with open("/proc/self/statm") as statm:
            in_use = int(statm.read().split()[0]) * page
        resource.setrlimit(resource.RLIMIT_AS, (in_use + budget_bytes, in_use + budget_bytes))
    except (ImportError, ValueError, OSError):  # pragma: no cover - not Linux
        pass


class _Overtime(Exception):
    pass


def _overtime(signum: int, frame: object) -> None:
    raise _Overtime


def _render_in_child(
    source: str, values: Mapping[str, Any], max_chars: int, seconds: float
) -> tuple[str, str, str]:
    """Runs in the child. Answers ("ok", text, ""), ("unsafe", reason, detail) or ("failed", reason,
    detail): only plain strings cross back, whatever the template raised. The child stops itself after
    `seconds` (a timer signal); the parent kills it if even that does not come back."""
    signal.signal(signal.SIGALRM, _overtime)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        parts: list[str] = []
        size = 0
        for chunk in _compiled(source).generate(dict(values)):
            size += len(chunk)
            if size > max_chars:
                return "unsafe", f"its output is longer than {max_chars} characters", ""
            parts.append(chunk)
        return "ok", "".join(parts), ""
    except _Overtime:
        return "unsafe", f"it took longer than {seconds:g} s", ""
    except MemoryError:
        return "unsafe", "it needs too much memory", ""
    except (SecurityError, OverflowError) as error:
        return "unsafe", "it does something the sandbox forbids", str(error)[:500]
    except TemplateSyntaxError as error:
        return "unsafe", "it is not a valid template", str(error)[:500]
    except TemplateError as error:
        return "failed", "it cannot be rendered with these values", str(error)[:500]
    except Exception as error:  # a filter raising on the values: still only this template's problem
        return "failed", f"it cannot be rendered ({type(error).__name__})", str(error)[:500]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


# --- the wire between parent and child: 4-byte length + JSON, both ways ---------------------------


def _frame(message: Mapping[str, Any]) -> bytes:
    body = json.dumps(message, default=str).encode()
    return len(body).to_bytes(4, "big") + body


def _read_frame(stream: BinaryIO) -> dict[str, Any] | None:
    header = stream.read(4)
    if len(header) < 4:
        return None
    return cast(dict[str, Any], json.loads(stream.read(int.from_bytes(header, "big"))))


def serve_child() -> None:
    """The child's main loop (`python -c CHILD`): one request in, one answer out, until stdin closes."""
    _limit_memory(int(os.environ.get("SANDBOX_MEMORY_BYTES", MEMORY_LIMIT_BYTES)))
    os.nice(10)  # the event loops of the parent go first
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while (request := _read_frame(stdin)) is not None:
        kind, text, detail = _render_in_child(
            request["source"], request["values"], request["max_chars"], request["seconds"]
        )
        stdout.write(_frame({"kind": kind, "text": text, "detail": detail}))
        stdout.flush()


CHILD = "from channels.sandbox import serve_child; serve_child()"


def _child_env(memory_bytes: int) -> dict[str, str]:
    # The child imports this module from wherever the parent does.
    env = dict(os.environ, SANDBOX_MEMORY_BYTES=str(memory_bytes))
    env["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)
    return env


def _answer(message: Mapping[str, Any]) -> str:
    if message["kind"] != "ok":
        raise TemplateRefused(
            f"the template override was refused: {message['text']}",
            message["detail"] or None,
            unsafe=message["kind"] == "unsafe",
        )
    return str(message["text"])


@dataclass
class _Child:
    process: asyncio.subprocess.Process

    async def ask(self, request: bytes) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write(request)
        await stdin.drain()
        size = int.from_bytes(await stdout.readexactly(4), "big")
        return cast(dict[str, Any], json.loads(await stdout.readexactly(size)))

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()

    def kill_now(self) -> None:
        """For a child of an event loop that is gone (its transports cannot be awaited any more)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)


class TemplateSandbox:
    """Child processes rendering overrides under the bounds above: at most `workers` renders at once,
    each in a child of its own, started once and reused; a child that overruns is killed alone. Bound to
    the event loop that uses it (a new loop starts new children). One per process is enough
    (`default_sandbox()`)."""

    def __init__(
        self,
        *,
        timeout_seconds: float = RENDER_TIMEOUT_SECONDS,
        max_chars: int = MAX_OUTPUT_CHARS,
        memory_bytes: int = MEMORY_LIMIT_BYTES,
        workers: int = WORKERS,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.max_chars = max_chars
        self._memory_bytes = memory_bytes
        self._workers = workers
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(workers)
        self._idle: list[_Child] = []

    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Children of another (closed) loop cannot be talked to from this one.
            for child in self._idle:
                child.kill_now()
            self._loop, self._slots, self._idle = loop, asyncio.Semaphore(self._workers), []

    async def _start(self) -> _Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=_child_env(self._memory_bytes),
        )
        return _Child(process)

    def _request(self, source: str, values: Mapping[str, Any]) -> bytes:
        return _frame(
            {
                "source": source,
                "values": dict(values),
                "max_chars": self.max_chars,
                "seconds": self.timeout_seconds,
            }
        )

    async def render(self, source: str, values: Mapping[str, Any]) -> str:
        """Render in a child; the event loop only awaits. Raises TemplateRefused."""
        self._bind()
        request = self._request(source, values)
        async with self._slots:
            # Starting a child is not the template's time: the clock starts with the request.
            child = self._idle.pop() if self._idle else await self._start()
            try:
                answer = await asyncio.wait_for(child.ask(request), self.timeout_seconds + KILL_GRACE)
            except TimeoutError:
                await child.kill()
                raise TemplateRefused(
                    f"the template override was refused: it took longer than {self.timeout_seconds:g} s"
                ) from None
            except (OSError, asyncio.IncompleteReadError, ValueError):
                await child.kill()  # it died under the template (memory) or spoke nonsense
                raise TemplateRefused("the template override was refused: it crashed its sandbox") from None
            except BaseException:
                await asyncio.shield(child.kill())  # cancelled mid-render: the child may be busy
                raise
            self._idle.append(child)
        return _answer(answer)

    def render_blocking(self, source: str, values: Mapping[str, Any]) -> str:
        """The same for synchronous callers (a preview, a test): a one-off child, blocking only the
        calling thread. It stops the render at the time limit itself; the kill waits for its start-up
        too."""
        try:
            done = subprocess.run(
                [sys.executable, "-c", CHILD],
                input=self._request(source, values),
                capture_output=True,
                timeout=self.timeout_seconds + START_SECONDS,
                env=_child_env(self._memory_bytes),
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise TemplateRefused(
                f"the template override was refused: it took longer than {self.timeout_seconds:g} s"
            ) from None
        answer = _read_frame(io.BytesIO(done.stdout))
        if answer is None:
            raise TemplateRefused("the template override was refused: it crashed its sandbox")
        return _answer(answer)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for child in idle:
            await child.kill()


_default: TemplateSandbox | None = None


def default_sandbox() -> TemplateSandbox:
    """The process's sandbox; its children start on first use (most processes never render one)."""
    global _default
    if _default is None:
        _default = TemplateSandbox()
    return _default


def forbidden_constructs(source: str) -> list[str]:
    """What of FORBIDDEN the template uses (raises TemplateSyntaxError when it does not parse)."""
    found = {FORBIDDEN[type(node)] for node in _environment.parse(source).find_all(tuple(FORBIDDEN))}
    return sorted(found)


async def check_template(source: str, sample: Mapping[str, Any], sandbox: TemplateSandbox) -> None:
    """The save-time check: valid syntax, none of FORBIDDEN, and a trial render over `sample` within the
    bounds (a failure that depends on the sample's values is not held against it). Raises
    TemplateRefused with a message for the admin."""
    try:
        forbidden = forbidden_constructs(source)
    except TemplateSyntaxError as exc:
        raise TemplateRefused(f"is not a valid template: {exc.message} (line {exc.lineno})") from None
    if forbidden:
        raise TemplateRefused(f"may not use {', '.join(forbidden)}")
    try:
        await sandbox.render(source, sample)
    except TemplateRefused as refused:
        if not refused.unsafe:
            return  # fails on the sample's values only: real events carry others
        message = str(refused).removeprefix("the template override was refused: ")
        raise TemplateRefused(f"cannot be used: {message}", refused.detail) from None
