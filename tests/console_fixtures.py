"""The staff console under test: the real app on loopback and Debian's Chromium driven by Playwright.

The browser is the system's `/usr/bin/chromium` (`make test` installs it with apt-get): Playwright's own
browser download cannot run here. Each test gets a fresh profile directory, and the browser may only reach
127.0.0.1 (host resolution is switched off for every other name, and any request elsewhere is aborted and
fails the test).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, Playwright, Route, async_playwright, expect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Every name but the loopback address fails to resolve: the browser cannot reach anything else.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
# Where the tests leave their screenshots for a reviewer (PNG).
ARTIFACTS = Path(os.environ.get("CONSOLE_ARTIFACTS", Path(__file__).parent.parent / ".artifacts" / "console"))
# Waits, not timings: generous so that a busy 2-core machine (the live refresh polls every second in the
# tests, the badge every three) never fails a test that would pass a moment later.
WAIT_MS = 20_000
expect.set_options(timeout=WAIT_MS)
LOOPBACK = re.compile(r"^(https?|wss?)://127\.0\.0\.1(:\d+)?/")


def chromium_or_fail() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(
            f"the console's browser tests need Debian's Chromium at {CHROMIUM}, and it is missing: "
            "`make test` installs it (apt-get install -y chromium, as root); elsewhere run that yourself",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="session")
async def playwright_driver() -> AsyncIterator[Playwright]:
    async with async_playwright() as driver:
        yield driver


@dataclass
class Browser:
    context: BrowserContext
    base_url: str
    strays: list[str] = field(default_factory=list)

    async def page(self) -> Page:
        page = await self.context.new_page()
        page.set_default_timeout(WAIT_MS)
        return page

    async def sign_in(self, page: Page, key: str, path: str = "/console/queue") -> None:
        await page.goto(f"{self.base_url}{path}")
        await page.fill("#api_key", key)
        await page.click("button[type=submit]")
        await page.wait_for_url(re.compile(re.escape(path) + r"(\?.*)?$"))


@asynccontextmanager
async def open_browser(driver: Playwright, base_url: str) -> AsyncIterator[Browser]:
    """A headless Chromium with a fresh profile directory, allowed to talk to 127.0.0.1 only."""
    executable = chromium_or_fail()
    profile = tempfile.mkdtemp(prefix="console-chromium-")
    context = await driver.chromium.launch_persistent_context(
        profile,
        executable_path=str(executable),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1440, "height": 900},
        locale="en-US",
        timezone_id="Europe/Berlin",
    )
    browser = Browser(context, base_url)

    async def guard(route: Route) -> None:
        if LOOPBACK.match(route.request.url) or route.request.url.startswith(("data:", "about:")):
            await route.continue_()
        else:
            browser.strays.append(route.request.url)
            await route.abort()

    await context.route("**/*", guard)
    try:
        yield browser
    finally:
        await context.close()
        shutil.rmtree(profile, ignore_errors=True)
    assert not browser.strays, f"the browser tried to leave 127.0.0.1: {browser.strays}"


async def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG for review; the tests keep them under .artifacts/console/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def http_sign_in(client: httpx.AsyncClient, key: str) -> dict[str, Any]:
    """Sign in over plain HTTP (no browser): returns the login response's headers and cookies."""
    form = await client.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None, form.text
    response = await client.post(
        "/console/login",
        data={"csrf": token.group(1), "api_key": key, "next": "/console/queue"},
    )
    return {"response": response, "set_cookie": response.headers.get_list("set-cookie")}
