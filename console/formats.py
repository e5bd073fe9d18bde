"""The console's language and its numbers, percentages, times and relative times, all through Babel (CLDR),
so German reads `97,5 %`, `12.345` and `vor 3 Tagen` and English `97.5 %`, `12,345` and `3 days ago`
without a hand-written rule per language.

The language is the cookie's choice (the switch in the page footer), else the best match of the
browser's `Accept-Language` by its q-values (`Locale.negotiate`), else German.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, tzinfo

from babel import Locale
from babel.dates import format_datetime, format_skeleton, format_timedelta
from babel.numbers import format_decimal, format_percent

LANGUAGES = ("de", "en")
DEFAULT_LANGUAGE = "de"
# One decimal and a space before the sign in both languages (the dashboard's style, `97,5 %` / `97.5 %`);
# Babel supplies the locale's decimal and grouping symbols.
PERCENT_PATTERN = "#,##0.0 %"
# Day first in German, ISO order in English: the column widths of the queue fit both.
DATETIME_PATTERNS = {"de": "dd.MM.yyyy HH:mm", "en": "yyyy-MM-dd HH:mm"}
MAX_LANGUAGE_RANGES = 20


def accepted_languages(header: str | None) -> list[str]:
    """The language ranges of an `Accept-Language` header, most wanted first (q-values, then order);
    ranges with q=0 ("not this one") and unreadable q-values are left out."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "").split(",")[:MAX_LANGUAGE_RANGES]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag.strip() and tag.strip() != "*" and 0 < quality <= 1:
            weighted.append((-quality, index, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


def negotiate(preferred: Sequence[str], available: Sequence[str] = LANGUAGES) -> str | None:
    found = Locale.negotiate(list(preferred), list(available), sep="-")
    return found.language if found is not None else None


def pick_language(cookie: str | None, accept_language: str | None) -> str:
    """The cookie's choice, else the best supported language the browser asks for, else German."""
    if cookie in LANGUAGES:
        return cookie
    return negotiate(accepted_languages(accept_language)) or DEFAULT_LANGUAGE


def number(value: float, language: str) -> str:
    return format_decimal(value, locale=language)


def percent(ratio: float, language: str) -> str:
    return format_percent(ratio, PERCENT_PATTERN, locale=language)


def moment(value: datetime, zone: tzinfo, language: str) -> str:
    return format_datetime(value, DATETIME_PATTERNS.get(language, DATETIME_PATTERNS["en"]), zone, language)


def day(value: date, language: str) -> str:
    """A day of the month, as the chart's axis shows it (`05.01.` / `1/5`)."""
    return format_skeleton("dM", value, locale=language)


def relative(value: datetime, now: datetime, language: str) -> str:
    """ "in 35 min." / "vor 3 Tagen": the distance in its largest whole unit, as people say it; seconds
    are noise on a queue that moves in minutes."""
    return format_timedelta(
        value - now, granularity="minute", threshold=1, add_direction=True, format="short", locale=language
    )
