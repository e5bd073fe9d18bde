"""Tenant template overrides render in child processes with bounds on time, output and memory: a runaway
template is stopped and refused with a clear reason while other renders go on, and the API's save-time
check refuses what could only ever fail."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from channels.sandbox import TemplateRefused, TemplateSandbox, check_template
from channels.templates import SAMPLE_CONTEXT

RUNAWAY = "{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}"


@pytest.fixture
async def sandbox() -> AsyncIterator[TemplateSandbox]:
    own = TemplateSandbox(timeout_seconds=0.5)
    try:
        yield own
    finally:
        await own.close()


async def test_a_runaway_template_is_stopped_and_refused_while_other_renders_go_on(
    sandbox: TemplateSandbox,
) -> None:
    assert await sandbox.render("Hallo {{ name }}", {"name": "Erika"}) == "Hallo Erika"

    async def quick() -> float:
        started = time.monotonic()
        assert await sandbox.render("Tel. {{ phone }}", {"phone": "+4930"}) == "Tel. +4930"
        return time.monotonic() - started

    started = time.monotonic()
    runaway = asyncio.create_task(sandbox.render(RUNAWAY, {}))
    quick_ones = await asyncio.gather(*(quick() for _ in range(5)))
    with pytest.raises(TemplateRefused, match=r"took longer than 0\.5 s") as refused:
        await runaway
    assert refused.value.unsafe
    assert time.monotonic() - started < 5  # stopped at its limit, not after 10 billion iterations
    assert max(quick_ones) < 0.4  # never waited for the runaway one
    # The sandbox is fine afterwards; the same template, compiled once, renders again.
    assert await sandbox.render("Hallo {{ name }}", {"name": "Max"}) == "Hallo Max"


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{% for a in range(5000) %}xx{% endfor %}", "longer than 4000 characters"),
        ("{{ 'x' * 10**9 }}", "forbids"),
        ("{{ 'x'|center(10**9) }}", "too much memory"),
        ("{{ range(10**9)|list }}", "forbids"),
    ],
)
async def test_output_and_memory_are_bounded(sandbox: TemplateSandbox, template: str, reason: str) -> None:
    with pytest.raises(TemplateRefused, match=reason) as refused:
        await sandbox.render(template, {})
    assert refused.value.unsafe


async def test_a_template_that_fails_on_its_values_says_so_without_echoing_them(
    sandbox: TemplateSandbox,
) -> None:
    with pytest.raises(TemplateRefused) as refused:
        await sandbox.render("{{ payload.missing.upper() }}", {"payload": {}})
    assert not refused.value.unsafe
    assert str(refused.value) == "the template override was refused: it cannot be rendered with these values"
    assert refused.value.detail is not None  # what Jinja said goes to the delivery log only


def test_a_synchronous_caller_gets_the_same_bounds() -> None:
    sandbox = TemplateSandbox(timeout_seconds=0.5)
    assert sandbox.render_blocking("Hallo {{ name }}", {"name": "Erika"}) == "Hallo Erika"
    with pytest.raises(TemplateRefused, match=r"took longer than 0\.5 s"):
        sandbox.render_blocking(RUNAWAY, {})


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ oops", "is not a valid template"),
        (RUNAWAY, "may not use loops"),
        ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "may not use macros"),
        ("{{ customer_name * 1000 }}", "cannot be used: it does something the sandbox forbids"),
        ("{{ 'x'|center(5000) }}", "cannot be used: its output is longer than 4000 characters"),
    ],
)
async def test_the_save_time_check_refuses_what_could_only_fail(
    sandbox: TemplateSandbox, template: str, message: str
) -> None:
    with pytest.raises(TemplateRefused, match=message):
        await check_template(template, SAMPLE_CONTEXT, sandbox)


async def test_the_save_time_check_accepts_what_depends_on_the_values(sandbox: TemplateSandbox) -> None:
    for template in (
        "Bitte {{ customer_name }} anrufen ({{ payload.reason }}).",
        "{{ payload.slot.upper() }}",
    ):
        await check_template(template, SAMPLE_CONTEXT, sandbox)
