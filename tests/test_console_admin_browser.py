"""The admin section in Chromium: an admin finds it in the menu, creates a staff member through the form,
sees a refused branch form with the API's messages next to the fields, and deactivates the staff member.
Screenshots land in .artifacts/console/ for review."""

from __future__ import annotations

from playwright.async_api import expect

from tests.api_fixtures import ApiEnv, Sessions
from tests.console_fixtures import Browser, screenshot
from tests.factories import make_tenant
from tests.test_console_browser import browser, console, playwright_driver

__all__ = ["browser", "console", "playwright_driver"]  # fixtures, imported so pytest finds them here


async def test_an_admin_manages_the_directory_in_the_browser(
    browser: Browser, console: tuple[ApiEnv, str], sessions: Sessions
) -> None:
    api, _ = console
    tenant = await make_tenant(sessions, name="Praxis")
    page = await browser.page()
    await browser.sign_in(page, await api.key("admin", tenant))
    await page.click("#nav-admin")
    await expect(page.locator("#admin-table")).to_contain_text("Praxis Berlin")
    await screenshot(page, "admin-branches")

    await page.click("text=Staff")
    await page.click("#admin-new")
    await page.fill("#f-name", "Lena Hoffmann")
    await page.select_option("#f-branch_id", str(tenant.branch_ids[0]))
    await page.select_option("#f-service_ids", [str(tenant.service_ids[0])])
    await page.fill("#f-phone_number", "0151 23456789")
    await page.fill("#f-working_hours", '{"mon": [["08:00", "12:00"]]}')
    await screenshot(page, "admin-staff-new")
    await page.click("#admin-save")
    await expect(page.locator("#admin-done")).to_contain_text("Created.")
    await expect(page.locator("#f-phone_number")).to_have_value("+4915123456789")
    await page.click("#admin-deactivate")
    await expect(page.locator("#admin-done")).to_contain_text("Deactivated")
    await expect(page.locator("#admin-activate")).to_be_visible()
    await screenshot(page, "admin-staff-deactivated")

    await page.goto(f"{browser.base_url}/console/admin/branches/new")
    await page.fill("#f-name", "Altona")
    await page.fill("#f-time_zone", "Europe/Hamburg")
    await page.fill("#f-opening_hours", '{"tue": [["09:00", "12:00"], ["11:00", "13:00"]]}')
    await page.click("#admin-save")
    await expect(page.locator("#error-time_zone")).to_contain_text("unknown time zone")
    await expect(page.locator("#error-opening_hours")).to_contain_text("09:00–12:00 and 11:00–13:00 overlap")
    await screenshot(page, "admin-branch-refused")
