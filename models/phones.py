"""Phone numbers of callbacks: parsed once where they enter the engine (E.164), masked for staff views,
and the word an erased customer's fields read instead."""

from __future__ import annotations

import functools

import phonenumbers


def normalize_phone(value: str) -> str:
    """Parse a phone number in international format and return it as E.164 (`+4930123456`).

    Cached: a callback's request is deserialised again at every step (workflow input, each write, each
    answer); its number is parsed where it enters the engine (in the form given, and its E.164 form), and
    every later read finds it parsed. Refused numbers raise and are not cached."""
    normalized = _normalized(value)
    if normalized != value:
        _normalized(normalized)
    return normalized


@functools.lru_cache(maxsize=4096)
def _normalized(value: str) -> str:
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("must be a phone number in international format, e.g. +49 30 1234567") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# What a callback's personal fields read after the customer was erased (GDPR Art. 17, api/customers_erase.py).
ERASED = "erased"


def mask_phone(e164: str) -> str:
    """Keep the country code and the last two digits: enough for staff to recognise, useless to a thief."""
    if e164 == ERASED:
        return ERASED
    parsed = phonenumbers.parse(e164, None)
    national = str(parsed.national_number)
    return f"+{parsed.country_code} {'*' * max(len(national) - 2, 0)}{national[-2:]}"
