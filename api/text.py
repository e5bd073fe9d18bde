"""Text the API accepts, and the JSON Schema `pattern` that says so in the OpenAPI document.

Every text field is trimmed and refuses control characters (they break terminals, CSV exports and log
lines, and nobody types them), line and paragraph separators (they act like newlines) and bidi overrides
(they disguise text). Required text must hold something besides spaces. The patterns state exactly that,
in the syntax the three readers share (ECMA-262 for clients, Python's `re` for the tests' generator, Rust's
`regex` for pydantic), so a schema-valid value is accepted and anything else is refused.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

# Line and paragraph separators act like newlines in most renderers; bidi overrides disguise text.
_INVISIBLE_TROUBLE = {"\u2028", "\u2029", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e"}
# Refused anywhere: C0 and C1 controls (category Cc), the separators and the bidi overrides.
_REFUSED = r"\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e"
# Refused in one line; multi-line text allows tab, line feed and carriage return.
_REFUSED_MULTILINE = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e"
# What `str.strip()` removes besides the refused characters: a value of only these is blank.
_SPACES = r" \xa0\u1680\u2000-\u200a\u202f\u205f\u3000"

SINGLE_LINE_PATTERN = f"^[^{_REFUSED}]*$"
MULTI_LINE_PATTERN = f"^[^{_REFUSED_MULTILINE}]*$"
REQUIRED_LINE_PATTERN = f"^[^{_REFUSED}]*[^{_REFUSED}{_SPACES}][^{_REFUSED}]*$"
REQUIRED_TEXT_PATTERN = (
    f"^[^{_REFUSED_MULTILINE}]*[^{_REFUSED_MULTILINE}{_SPACES}\\t\\n\\r][^{_REFUSED_MULTILINE}]*$"
)
_EMAIL_PART = f"[^@{_REFUSED}{_SPACES}]+"
_EMAIL = re.compile(f"{_EMAIL_PART}@{_EMAIL_PART}\\.{_EMAIL_PART}")
# Spaces around the address are trimmed away, so they are allowed.
EMAIL_PATTERN = f"^[{_SPACES}]*{_EMAIL.pattern}[{_SPACES}]*$"


def _check_text(value: str, *, multiline: bool) -> str:
    allowed = {"\n", "\t", "\r"} if multiline else set()
    for index, char in enumerate(value):
        if char in allowed:
            continue
        if unicodedata.category(char) in ("Cc", "Cs") or char in _INVISIBLE_TROUBLE:
            raise ValueError(f"contains the control character U+{ord(char):04X} at position {index}")
    return value.strip()


def single_line(value: str) -> str:
    return _check_text(value, multiline=False)


def multi_line(value: str) -> str:
    return _check_text(value, multiline=True)


def _not_blank(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def _email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError("is not an email address (name@example.org)")
    return value


@dataclass(frozen=True)
class Documented:
    """Adds JSON Schema keywords to a type's schema (the validators enforce them; this states them)."""

    keywords: dict[str, Any]

    def __hash__(self) -> int:
        return hash(tuple(sorted((key, repr(value)) for key, value in self.keywords.items())))

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.update(self.keywords)
        return schema


def pattern(regex: str) -> Documented:
    return Documented({"pattern": regex})


SingleLine = Annotated[str, AfterValidator(single_line), pattern(SINGLE_LINE_PATTERN)]
MultiLine = Annotated[str, AfterValidator(multi_line), pattern(MULTI_LINE_PATTERN)]
RequiredLine = Annotated[
    str, AfterValidator(single_line), AfterValidator(_not_blank), pattern(REQUIRED_LINE_PATTERN)
]
RequiredText = Annotated[
    str, AfterValidator(multi_line), AfterValidator(_not_blank), pattern(REQUIRED_TEXT_PATTERN)
]
EmailText = Annotated[str, AfterValidator(single_line), AfterValidator(_email), pattern(EMAIL_PATTERN)]
