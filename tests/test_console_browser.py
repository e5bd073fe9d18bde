"""The staff console in a real headless browser (Debian's Chromium through Playwright) against the real
app on 127.0.0.1, PostgreSQL and Temporal: what staff do all day, clicked as they would click it.

No sleeps and no timed assertions: every wait is Playwright waiting for an element or a URL. The tests
leave screenshots of the list, the detail page and the dashboard under `.artifacts/console/`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, Playwright, expect
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from models.tables import CallbackRequest
from tests.api_fixtures import ApiEnv, Sessions, running_api, serve_api
from tests.console_fixtures import Browser, open_browser, playwright_driver, screenshot
from tests.factories import Tenant, add_staff, make_tenant, set_callback_policy

__all__ = ["playwright_driver"]  # the session fixture, imported so pytest finds it here


@pytest.fixture
async def console(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[tuple[ApiEnv, str]]:
    # A one-second refresh and no badge cache, so that the live views catch up within Playwright's wait.
    async with (
        running_api(
            time_skipping_env.client,
            sessions,
            task_queue,
            console_refresh_seconds=1.0,
            console_badge_ttl_seconds=0.0,
        ) as env,
        serve_api(env.app) as url,
    ):
        yield env, url


@pytest.fixture
async def browser(playwright_driver: Playwright, console: tuple[ApiEnv, str]) -> AsyncIterator[Browser]:
    async with open_browser(playwright_driver, console[1]) as opened:
        yield opened


async def _create(
    api: httpx.AsyncClient, tenant: Tenant, name: str, phone: str, **extra: Any
) -> dict[str, Any]:
    body = {"branch_id": tenant.branch_ids[0], "service_id": tenant.service_ids[0], "customer_name": name}
    created = await api.post("/v1/callbacks", json={**body, "phone_number": phone, **extra})
    assert created.status_code == 201, created.text
    result: dict[str, Any] = created.json()
    return result


async def _row(sessions: Sessions, callback_id: str) -> CallbackRequest:
    async with sessions() as session:
        row = await session.scalar(
            select(CallbackRequest).where(CallbackRequest.id == uuid.UUID(callback_id))
        )
    assert row is not None
    return row


async def _confirm(page: Page, action: str, **fields: str) -> None:
    """Open an action's confirmation dialog, fill it in, confirm, and wait for the page that answers."""
    await page.click(f"#open-{action}")
    dialog = page.locator(f"#dialog-{action}")
    await expect(dialog).to_be_visible()
    for selector, value in fields.items():
        target = dialog.locator(selector)
        if await target.evaluate("el => el.tagName") == "SELECT":
            await target.select_option(value)
        else:
            await target.fill(value)
    async with page.expect_navigation():
        await dialog.locator(f"#confirm-{action}").click()


async def test_staff_works_a_callback_from_the_browser(
    console: tuple[ApiEnv, str], browser: Browser, sessions: Sessions
) -> None:
    env, _ = console
    tenant = await make_tenant(sessions)
    me = await add_staff(sessions, tenant, services=(0,))
    colleague = await add_staff(sessions, tenant)
    service = env.http(await env.key("service", tenant))
    staff_key = await env.key("staff", tenant, staff_id=me)
    worker = env.http(staff_key)
    await _create(service, tenant, "Someone Else", "+49 30 5550000")
    callback = await _create(service, tenant, "Erika Mustermann", "+49 30 5550101")
    cid = callback["id"]

    page = await browser.page()
    await browser.sign_in(page, staff_key)
    # The queue lists the new callback, and a search by part of the phone number finds only it.
    await expect(page.locator(f"tr[data-id='{cid}']")).to_be_visible()
    await page.fill("#filter-q", "5550101")
    async with page.expect_navigation():
        await page.click("#apply-filters")
    rows = page.locator("#queue-table tbody tr[data-id]")
    await expect(rows).to_have_count(1)
    await expect(rows.first.locator(".phone")).to_contain_text("+49305550101")
    await screenshot(page, "queue")

    async with page.expect_navigation():
        await rows.first.locator("td.customer a").click()
    await expect(page.locator("h1")).to_have_text("Erika Mustermann")
    await expect(page.locator("#temporal-link")).to_have_attribute(
        "href", f"http://127.0.0.1:8233/namespaces/default/workflows/c{tenant.company_id}.callback-{cid}"
    )
    # Only the actions the state allows: an assigned callback can be contacted, not... everything.
    await expect(page.locator("#open-contacted")).to_be_visible()

    await _confirm(page, "assign", **{"#assign-staff": str(colleague)})
    await expect(page.locator("#done")).to_have_text("Assigned.")
    await expect(page.locator("#cb-assignee")).to_have_text(f"Staff {colleague.int}")

    await _confirm(page, "contacted")
    await expect(page.locator("#cb-status")).to_have_text("contacted")
    await expect(page.locator("#open-contacted")).to_have_count(0)  # not allowed any more

    # Completing needs notes: the browser keeps an empty dialog open, the engine's rule stands behind it.
    await page.click("#open-complete")
    await page.click("#confirm-complete")
    await expect(page.locator("#dialog-complete")).to_be_visible()
    await page.fill("#complete-notes", "booked a checkup for Tuesday")
    async with page.expect_navigation():
        await page.click("#confirm-complete")
    await expect(page.locator("#cb-status")).to_have_text("completed")
    await expect(page.locator("#completion-notes")).to_have_text("booked a checkup for Tuesday")
    await expect(page.locator("#actions button[data-dialog]")).to_have_count(0)

    # The timeline shows every step, the database and the list agree.
    for event in ("callback.created", "callback.assigned", "callback.contacted", "callback.completed"):
        await expect(page.locator(f"li[data-event='{event}']").first).to_be_visible()
    await screenshot(page, "detail")
    row = await _row(sessions, cid)
    assert (row.status, row.assigned_to, row.completion_notes) == (
        "completed",
        colleague,
        "booked a checkup for Tuesday",
    )
    await page.goto(f"{browser.base_url}/console/queue?q=5550101")
    await expect(page.locator(f"tr[data-id='{cid}'] td.status")).to_have_text("completed")

    # A refused action shows the engine's message: the page is stale, the callback was completed meanwhile.
    other = await _create(service, tenant, "Max Stale", "+49 30 5550202")
    await page.goto(f"{browser.base_url}/console/callbacks/{other['id']}")
    await expect(page.locator("#open-contacted")).to_be_visible()
    done = await worker.post(f"/v1/callbacks/{other['id']}/complete", json={"notes": "by phone"})
    assert done.status_code == 200, done.text
    await _confirm(page, "contacted")
    await expect(page.locator("#refusal")).to_contain_text(
        "cannot mark contacted: the callback is completed (allowed from: assigned)"
    )

    # Another company's callback does not exist for this key.
    stranger = await make_tenant(sessions, name="Other GmbH")
    theirs = await _create(env.http(await env.key("service", stranger)), stranger, "Hidden", "+49 30 5559999")
    response = await page.goto(f"{browser.base_url}/console/callbacks/{theirs['id']}")
    assert response is not None
    assert response.status == 404
    await expect(page.locator("h1")).to_have_text("Not found")


async def test_queue_filters_sort_live_refresh_badge_and_bulk_assign(
    console: tuple[ApiEnv, str], browser: Browser, sessions: Sessions
) -> None:
    env, _ = console
    tenant = await make_tenant(sessions)
    await set_callback_policy(sessions, tenant, {"auto_assign": False})  # normal callbacks stay pending
    first = await add_staff(sessions, tenant, services=(0,))
    second = await add_staff(sessions, tenant)
    service = env.http(await env.key("service", tenant))
    anna = await _create(service, tenant, "Anna Urgent", "+49 30 5550001", priority="urgent")
    bert = await _create(service, tenant, "Bert High", "+49 30 5550002", priority="high")
    carl = await _create(service, tenant, "Carl Normal", "+49 30 5550003")
    assert (anna["assigned_to"], bert["assigned_to"], carl["status"]) == (str(first), str(first), "pending")

    page = await browser.page()
    await browser.sign_in(page, await env.key("admin", tenant))
    await expect(page.locator("#queue-table tbody tr[data-id]")).to_have_count(3)
    await expect(page.locator("#pending-badge .badge")).to_have_text("1")

    # Filters from the page: priority urgent, then status pending; each narrows the list.
    await page.check("input[name=priority][value=urgent]")
    async with page.expect_navigation():
        await page.click("#apply-filters")
    await expect(page.locator("#queue-table tbody tr[data-id]")).to_have_count(1)
    await expect(page.locator("#queue-table tbody tr[data-id] td.customer")).to_have_text("Anna Urgent")
    await page.uncheck("input[name=priority][value=urgent]")
    await page.check("input[name=status][value=pending]")
    async with page.expect_navigation():
        await page.click("#apply-filters")
    await expect(page.locator("#queue-table tbody tr[data-id] td.customer")).to_have_text(["Carl Normal"])
    await page.select_option("#filter-overdue", "yes")
    async with page.expect_navigation():
        await page.click("#apply-filters")
    await expect(page.locator("#queue-table tbody tr[data-id]")).to_have_count(0)

    # Sort by clicking a column header: ascending, then descending.
    await page.goto(f"{browser.base_url}/console/queue")
    names = page.locator("#queue-table tbody tr[data-id] td.customer")
    async with page.expect_navigation():
        await page.click("a[data-sort=customer_name]")
    await expect(names).to_have_text(["Anna Urgent", "Bert High", "Carl Normal"])
    async with page.expect_navigation():
        await page.click("a[data-sort=customer_name]")
    await expect(names).to_have_text(["Carl Normal", "Bert High", "Anna Urgent"])
    async with page.expect_navigation():
        await page.click("a[data-sort=priority]")
    await expect(names).to_have_text(["Carl Normal", "Bert High", "Anna Urgent"])  # normal < high < urgent

    # Live refresh: a callback created elsewhere appears, and the badge counts it, without a reload.
    await page.evaluate("window.__not_reloaded = true")
    dora = await _create(service, tenant, "Dora Live", "+49 30 5550004")
    await expect(page.locator(f"tr[data-id='{dora['id']}']")).to_be_visible()
    await expect(page.locator("#pending-badge .badge")).to_have_text("2")
    assert await page.evaluate("window.__not_reloaded === true")

    # Bulk assign two callbacks to the second staff member.
    await page.check(f"tr[data-id='{carl['id']}'] input.row-select")
    await page.check(f"tr[data-id='{dora['id']}'] input.row-select")
    await page.click("#bulk-assign-open")
    await expect(page.locator("#bulk-assign")).to_be_visible()
    await page.select_option("#bulk-staff", str(second))
    async with page.expect_navigation():
        await page.click("#bulk-assign-confirm")
    await expect(page.locator(".flash.ok")).to_have_text("Assign: 2 succeeded, 0 failed")
    for callback in (carl, dora):
        await expect(page.locator(f"tr[data-id='{callback['id']}'] td.assignee")).to_have_text(
            f"Staff {second.int}"
        )
        row = await _row(sessions, callback["id"])
        assert (row.status, row.assigned_to) == ("assigned", second)
    await expect(page.locator("#pending-badge .badge")).to_have_text("0")


async def test_create_form_dashboard_and_language(
    console: tuple[ApiEnv, str], browser: Browser, sessions: Sessions
) -> None:
    env, _ = console
    tenant = await make_tenant(sessions)  # has the customer Erika Mustermann, +4930123456
    me = await add_staff(sessions, tenant, services=(0,))
    staff_key = await env.key("staff", tenant, staff_id=me)
    worker = env.http(staff_key)
    page = await browser.page()
    await browser.sign_in(page, staff_key, "/console/callbacks/new")

    # Customer auto-fill from the existing customers.
    await page.fill("#customer-search", "Erika")
    await page.click("button[data-customer]")
    await expect(page.locator("#customer_name")).to_have_value("Erika Mustermann")
    await expect(page.locator("#phone_number")).to_have_value("+4930123456")

    # The phone is checked as the API checks it, on leaving the field and again on submit.
    await page.fill("#phone_number", "12ab")
    await page.locator("#phone_number").blur()
    await expect(page.locator("#error-phone_number")).to_contain_text("is not a phone number")
    async with page.expect_navigation():
        await page.click("#create-submit")
    await expect(page.locator("#error-phone_number")).to_contain_text("is not a phone number")
    await expect(page.locator("#form-errors")).to_be_visible()
    assert await env.callback_count() == 0
    await page.fill("#phone_number", "030 1234567")
    await page.locator("#phone_number").blur()
    await expect(page.locator("#phone-ok")).to_have_text("valid: +49301234567")
    async with page.expect_navigation():
        await page.click("#create-submit")
    await expect(page.locator("#done")).to_have_text("Callback created.")
    await expect(page.locator("#cb-phone .mono")).to_have_text("+49301234567")
    assert await env.callback_count() == 1

    # Some history for the dashboard: one completed, one manually escalated.
    service = env.http(await env.key("service", tenant))
    done = await _create(service, tenant, "Done Soon", "+49 30 5550011")
    assert (
        await worker.post(f"/v1/callbacks/{done['id']}/complete", json={"notes": "ok"})
    ).status_code == 200
    hot = await _create(service, tenant, "Angry Customer", "+49 30 5550012", priority="urgent")
    escalated = await worker.post(f"/v1/callbacks/{hot['id']}/escalate", json={"reason": "complaint"})
    assert escalated.status_code == 200, escalated.text

    await page.goto(f"{browser.base_url}/console/dashboard")
    summary = (await worker.get("/v1/callbacks/summary")).json()
    await expect(page.locator("#tile-overdue .value")).to_have_attribute(
        "data-value", str(summary["overdue"])
    )
    await expect(page.locator("#tile-pending .value")).to_have_attribute(
        "data-value", str(summary["pending"])
    )
    await expect(page.locator("#tile-esc-24h .value")).to_have_text(str(summary["escalations_24h"]))
    await expect(page.locator("#tile-esc-7d .value")).to_have_text(str(summary["escalations_7d"]))
    assert summary["escalations_24h"] == 1
    assert summary["sla_compliance_rate"] == 1.0
    await expect(page.locator("#tile-sla .value")).to_have_text("100.0 %")
    for status, count in summary["by_status"].items():
        await expect(page.locator(f"#by-status td[data-status={status}]")).to_have_text(str(count))
    for load in summary["open_per_staff"]:
        await expect(page.locator(f"#workload tr[data-staff='{load['staff_id']}'] td.num")).to_have_text(
            str(load["open_callbacks"])
        )
    await expect(page.locator("#trend-chart g[data-count]")).to_have_count(14)
    await expect(page.locator("#trend-chart g[data-count]").last).to_have_attribute("data-count", "1")
    await screenshot(page, "dashboard")

    # Language switch: German and back to English, on the same page.
    await page.click("a[data-lang=de]")
    await expect(page.locator("h1")).to_have_text("Übersicht")
    await expect(page.locator("#tile-overdue .label")).to_have_text("Überfällig")
    await expect(page.locator("#tile-sla .value")).to_have_text("100,0 %")  # German decimal comma
    await screenshot(page, "dashboard-de")
    await page.click("a[data-lang=en]")
    await expect(page.locator("h1")).to_have_text("Dashboard")
    await expect(page).to_have_url(re.compile(r"/console/dashboard$"))
