"""Bad directory input through HTTP: every problem of a body is answered at once, by field, as
application/problem+json (422), and nothing is written: zones, hours, closures, countries, subdivisions,
phones, emails, webhook URLs on non-public addresses; also on PATCH, against the stored row."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from models.tables import Branch, Company, Customer, Service, Staff
from tests.api_fixtures import ApiEnv, Sessions
from tests.factories import make_tenant
from tests.test_api_directory import api, ok

__all__ = ["api"]  # the fixture, imported so pytest finds it here


async def counts(sessions: Sessions) -> dict[str, int]:
    async with sessions() as session:
        return {
            table.__tablename__: int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for table in (Company, Branch, Service, Staff, Customer)
        }


async def test_bad_input_is_refused_by_field_and_writes_nothing(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    admin = api.http(await api.key("admin", tenant))
    root = api.http(await api.key("super_admin"))
    before = await counts(sessions)

    cases: list[tuple[httpx.AsyncClient, str, dict[str, Any], str, str]] = [
        (
            admin,
            "/v1/branches",
            {"name": "X", "time_zone": "Europe/Atlantis"},
            "time_zone",
            "unknown time zone",
        ),
        (
            admin,
            "/v1/branches",
            {"name": "X", "opening_hours": {"tue": [["09:00", "12:00"], ["11:30", "14:00"]]}},
            "opening_hours.tue",
            "tue: 09:00–12:00 and 11:30–14:00 overlap",
        ),
        (
            admin,
            "/v1/branches",
            {"name": "X", "opening_hours": {"wed": [["17:00", "09:00"]]}},
            "opening_hours.wed",
            "wed: 17:00–09:00 must open before it closes",
        ),
        (
            admin,
            "/v1/branches",
            {"name": "X", "opening_hours": {"mon": [["9", "17:00"]]}},
            "opening_hours.mon",
            "HH:MM",
        ),
        (
            admin,
            "/v1/branches",
            {"name": "X", "opening_hours": {"funday": []}},
            "opening_hours.funday",
            "unknown field",
        ),
        (
            admin,
            "/v1/branches",
            {"name": "X", "country": "DE", "subdivision": "XX"},
            "subdivision",
            "unknown subdivision",
        ),
        (admin, "/v1/branches", {"name": "X", "subdivision": "BE"}, "subdivision", "needs a country"),
        (admin, "/v1/branches", {"name": "X", "country": "Germany"}, "country", "ISO 3166-1"),
        (
            admin,
            "/v1/branches",
            {"name": "X", "closures": [{"start": "2030-01-05", "end": "2030-01-01"}]},
            "closures.0.end",
            "before it starts",
        ),
        (admin, "/v1/branches", {"name": "X", "quiet_hours_start": "22:00"}, "quiet_hours_start", "both"),
        (admin, "/v1/branches", {"name": "X", "phone_number": "12"}, "phone_number", "phone number"),
        (admin, "/v1/staff", {"name": "X", "phone_number": "not a phone"}, "phone_number", "phone number"),
        (admin, "/v1/staff", {"name": "X", "email": "nope"}, "email", "is not an email address"),
        (admin, "/v1/staff", {"name": "X", "service_ids": [999999]}, "service_ids", "no such service"),
        (admin, "/v1/staff", {"name": "X", "locale": "fr"}, "locale", "'de' or 'en'"),
        (admin, "/v1/customers", {"name": "X", "phone_number": "+49 30"}, "phone_number", "phone number"),
        (admin, "/v1/customers", {"name": "X", "time_zone": "Berlin"}, "time_zone", "unknown time zone"),
        (admin, "/v1/services", {"name": "X", "duration_minutes": 0}, "duration_minutes", "greater than 0"),
        (
            root,
            "/v1/companies",
            {"name": "X", "webhook_url": "http://127.0.0.1:8000/x"},
            "webhook_url",
            "non-public",
        ),
        (
            root,
            "/v1/companies",
            {"name": "X", "webhook_url": "http://localhost/x"},
            "webhook_url",
            "internal host",
        ),
        (
            root,
            "/v1/companies",
            {"name": "X", "webhook_url": "http://169.254.169.254/latest"},
            "webhook_url",
            "non-public",
        ),
        (
            root,
            "/v1/companies",
            {"name": "X", "webhook_url": "http://[fd00:ec2::254]/"},
            "webhook_url",
            "non-public",
        ),
        (
            root,
            "/v1/companies",
            {"name": "X", "webhook_url": "http://10.1.2.3/x"},
            "webhook_url",
            "non-public",
        ),
        (
            root,
            "/v1/companies",
            {"name": "X", "webhook_url": "http://2130706433/x"},
            "webhook_url",
            "non-public",
        ),
        (
            root,
            "/v1/companies",
            {"name": "X", "webhook_url": "http://metadata.google.internal/computeMetadata/v1/"},
            "webhook_url",
            "internal host",
        ),
        (root, "/v1/companies", {"name": "X", "webhook_url": "ftp://93.184.215.14/"}, "webhook_url", "http"),
        (root, "/v1/companies", {"name": "X", "time_zone": "CET+1"}, "time_zone", "unknown time zone"),
        (root, "/v1/companies", {"name": "X", "currency": "euro"}, "currency", "ISO 4217"),
    ]
    for client, path, body, field, message in cases:
        response = await client.post(path, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        errors = response.json()["errors"]
        assert any(e["field"] == field and message in e["message"] for e in errors), (body, errors)
    assert await counts(sessions) == before

    # The same checks on a PATCH, against the stored values; nothing changes either.
    branch = tenant.branch_ids[0]
    for body, field in [
        ({"subdivision": "BE"}, "subdivision"),  # the stored branch has no country
        ({"opening_hours": {"sun": [["10:00", "11:00"], ["10:30", "12:00"]]}}, "opening_hours.sun"),
        ({"time_zone": None}, "time_zone"),
        ({"name": "   "}, "name"),
    ]:
        response = await admin.patch(f"/v1/branches/{branch}", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == field
    unchanged = await ok(await admin.get(f"/v1/branches/{branch}"))
    assert unchanged["subdivision"] is None
    assert unchanged["opening_hours"] == {}
    patched = await ok(
        await admin.patch(f"/v1/branches/{branch}", json={"country": "DE", "subdivision": "by"})
    )
    assert (patched["country"], patched["subdivision"]) == ("DE", "BY")
    assert patched["name"] == unchanged["name"]
    # Unsetting the country while a subdivision stays is refused too.
    orphan = await admin.patch(f"/v1/branches/{branch}", json={"country": None})
    assert orphan.status_code == 422
    assert orphan.json()["errors"][0]["field"] == "subdivision"
