"""The console speaks German and English through Babel: the language a browser asks for by its
Accept-Language q-values, and numbers, percentages, times and relative times as each language writes them —
down to the German dashboard's `97,5 %`, rendered by the real app from real rows."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from temporalio.testing import WorkflowEnvironment

from console import formats
from models.tables import CallbackRequest
from store.db import transaction
from tests.api_fixtures import ApiEnv, Sessions, running_api
from tests.console_fixtures import http_sign_in
from tests.factories import Tenant, add_staff, make_tenant

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("en-GB,en;q=0.8", "en"),
        ("de-AT", "de"),
        ("fr;q=0.9, en-US;q=0.8, de;q=0.5", "en"),  # the best supported one, by q
        ("de;q=0.5, en", "en"),  # q decides, not the order
        ("en;q=0, de;q=0.1", "de"),  # q=0 means "not this one"
        ("en;q=abc, de;q=0.2", "de"),
        ("fr, it", "de"),  # nothing supported: German
        ("*", "de"),
        ("", "de"),
        (None, "de"),
    ],
)
def test_the_language_is_negotiated_from_accept_language_q_values(header: str | None, language: str) -> None:
    assert formats.pick_language(None, header) == language


def test_the_language_cookie_beats_the_browser() -> None:
    assert formats.pick_language("en", "de") == "en"
    assert formats.pick_language("xx", "en") == "en"  # an unknown cookie is ignored


def test_numbers_percentages_and_times_are_written_as_each_language_writes_them() -> None:
    assert (formats.percent(0.975, "de"), formats.percent(0.975, "en")) == ("97,5 %", "97.5 %")
    assert (formats.percent(1.0, "de"), formats.percent(1.0, "en")) == ("100,0 %", "100.0 %")
    assert (formats.number(12345, "de"), formats.number(12345, "en")) == ("12.345", "12,345")
    berlin = ZoneInfo("Europe/Berlin")
    assert formats.moment(NOW, berlin, "de") == "02.03.2026 13:00"
    assert formats.moment(NOW, berlin, "en") == "2026-03-02 13:00"
    assert (formats.day(date(2026, 1, 5), "de"), formats.day(date(2026, 1, 5), "en")) == ("5.1.", "1/5")


@pytest.mark.parametrize(
    ("minutes", "de", "en"),
    [
        (35, "in 35 Min.", "in 35 min."),
        (-35, "vor 35 Min.", "35 min. ago"),
        (-5 * 60, "vor 5 Std.", "5 hr. ago"),
        (3 * 24 * 60, "in 3 Tagen", "in 3 days"),
        (-3 * 24 * 60, "vor 3 Tagen", "3 days ago"),  # German dative after "vor"
    ],
)
def test_relative_times(minutes: int, de: str, en: str) -> None:
    moment = NOW + timedelta(minutes=minutes)
    assert formats.relative(moment, NOW, "de") == de
    assert formats.relative(moment, NOW, "en") == en


@pytest.fixture
async def api(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[ApiEnv]:
    async with running_api(time_skipping_env.client, sessions, task_queue) as env:
        yield env


async def _completed(sessions: Sessions, tenant: Tenant, *, on_time: int, late: int) -> None:
    """Completed callbacks in the read model: `on_time` done before their deadline, `late` after it."""
    now = datetime.now(UTC)
    async with transaction(sessions) as session:
        for index in range(on_time + late):
            deadline = now - timedelta(hours=1)
            session.add(
                CallbackRequest(
                    id=uuid.uuid4(),
                    company_id=tenant.company_id,
                    branch_id=tenant.branch_ids[0],
                    phone_number="+4930123456",
                    customer_name="Done",
                    priority="normal",
                    status="completed",
                    expires_at=deadline,
                    completed_at=deadline - timedelta(minutes=5 if index < on_time else -5),
                )
            )


async def test_the_german_dashboard_shows_the_sla_rate_as_babel_writes_it(
    api: ApiEnv, sessions: Sessions
) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    await _completed(sessions, tenant, on_time=39, late=1)  # 97.5 % on time
    key = await api.key("staff", tenant, staff_id=staff)
    pages = {}
    for header in ("de-DE,de;q=0.9,en;q=0.5", "fr;q=0.9,en-GB;q=0.8,de;q=0.1"):
        browser = api.http(**{"Accept-Language": header})
        assert (await http_sign_in(browser, key))["response"].status_code == 303
        page = await browser.get("/console/dashboard")
        assert page.status_code == 200, page.text
        pages[header[:2]] = page.text
    german, english = pages["de"], pages["fr"]
    rate = re.compile(r'<span class="value" data-value="0\.975">([^<]*)</span>')
    assert rate.findall(german) == ["97,5 %"]
    assert rate.findall(english) == ["97.5 %"]
    assert "Übersicht" in german
    assert "Dashboard" in english
    assert ",5 %" not in english
