"""Phone numbers as people type them: national numbers are read in the branch's country.

A receptionist in Berlin types `030 1234567`, not `+49 30 1234567`. The branch has no country column, so
its country is taken from what the branch already knows: its own phone number, else its time zone (via the
system's `zone.tab`), else the company's time zone. Without any of them only international numbers pass.
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache
from pathlib import Path

import phonenumbers


@lru_cache(maxsize=1)
def _zone_countries() -> dict[str, str]:
    """IANA zone → ISO country code, from the tz database's `zone.tab` where the system has one."""
    for folder in zoneinfo.TZPATH:
        table = Path(folder) / "zone.tab"
        if table.is_file():
            found: dict[str, str] = {}
            for line in table.read_text(encoding="utf-8").splitlines():
                if line and not line.startswith("#"):
                    parts = line.split("\t")
                    if len(parts) >= 3:
                        found[parts[2]] = parts[0]
            return found
    return {}


def default_region(
    branch_phone: str | None, branch_zone: str | None, company_zone: str | None = None
) -> str | None:
    if branch_phone:
        try:
            region = phonenumbers.region_code_for_number(phonenumbers.parse(branch_phone, None))
            if region and region != "ZZ":
                return str(region)
        except phonenumbers.NumberParseException:
            pass
    countries = _zone_countries()
    for zone in (branch_zone, company_zone):
        if zone and zone in countries:
            return countries[zone]
    return None


def to_e164(raw: str, region: str | None) -> str:
    """The number in E.164, or ValueError with a message fit for the caller."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        hint = f" (national numbers are read as {region})" if region else " in international format"
        raise ValueError(f"is not a phone number{hint}, e.g. +49 30 1234567") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("is not a valid phone number")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
