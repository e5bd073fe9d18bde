"""Ops still read callbacks in the Temporal UI after signing in (issue 16): the dev server's UI, started
as `make dev` starts it (`--ui-codec-endpoint` pointing at the API's codec server), shows a callback's
customer to an operator signed in to the staff console whose browser includes credentials for the codec
endpoint — and only ciphertext to a browser without that sign-in."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from playwright.async_api import Page, Playwright, expect

from devstack.temporal import register_search_attributes, start_dev_server, wait_for_server
from telemetry.asgi_server import serve_asgi
from tests.api_fixtures import Sessions, running_api
from tests.codec_fixtures import CONVERTER
from tests.console_fixtures import open_browser, playwright_driver, screenshot  # noqa: F401 - the fixture
from tests.factories import make_tenant
from tests.privacy_fixtures import NAME, NOTES, PHONE


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def dev_server_with_ui(codec_endpoint: str) -> AsyncIterator[tuple[str, str]]:
    """(frontend address, UI base URL) of a dev server whose UI decodes through `codec_endpoint`."""
    port, ui_port = free_port(), free_port()
    process = start_dev_server(port=port, ui_port=ui_port, ui_codec_endpoint=codec_endpoint)
    try:
        await wait_for_server(f"127.0.0.1:{port}")
        yield f"127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}"
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 20)


async def use_codec_with_credentials(page: Page, ui: str, endpoint: str) -> None:
    """What an operator sets once in the UI's codec settings (Data Encoder): the endpoint, from this
    browser, with cross-origin credentials (the dev server's UI has no switch for the latter)."""
    await page.goto(ui)
    settings = {"endpoint": endpoint, "includeCredentials": True, "overrideRemoteCodecConfiguration": True}
    for key, value in settings.items():
        await page.evaluate("([k, v]) => window.localStorage.setItem(k, v)", [key, json.dumps(value)])


async def test_the_temporal_ui_shows_a_callback_to_a_signed_in_operator_only(
    playwright_driver: Playwright,  # noqa: F811
    sessions: Sessions,
    task_queue: str,
) -> None:
    api_port = free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    endpoint = f"{api_url}/codec"
    tenant = await make_tenant(sessions, staff=1)
    async with dev_server_with_ui(endpoint) as (address, ui):
        client = await wait_for_server(address, data_converter=CONVERTER)
        await register_search_attributes(client)
        async with (
            running_api(client, sessions, task_queue, codec_cors_origins=ui) as api,
            serve_asgi(api.app, "127.0.0.1", api_port),
        ):
            key = await api.key("admin", tenant)
            created = await api.http(key).post(
                "/v1/callbacks",
                json={
                    "branch_id": tenant.branch_ids[0],
                    "customer_name": NAME,
                    "phone_number": PHONE,
                    "notes": NOTES,
                },
            )
            assert created.status_code == 201, created.text
            workflow = (
                f"{ui}/namespaces/default/workflows/c{tenant.company_id}.callback-{created.json()['id']}"
            )

            async with open_browser(playwright_driver, api_url) as operator:
                page = await operator.page()
                await operator.sign_in(page, key)
                await use_codec_with_credentials(page, ui, endpoint)
                await page.goto(workflow)
                await expect(page.get_by_text(NAME).first).to_be_visible()
                await screenshot(page, "temporal-ui-signed-in")

            async with open_browser(playwright_driver, api_url) as stranger:  # the same UI, no sign-in
                page = await stranger.page()
                await use_codec_with_credentials(page, ui, endpoint)
                await page.goto(workflow)
                await expect(page.get_by_text("Running").first).to_be_visible()
                await asyncio.sleep(2)  # give the UI its decode attempts
                await screenshot(page, "temporal-ui-without-sign-in")
                assert NAME not in await page.content()
