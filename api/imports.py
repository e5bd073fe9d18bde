"""Reading a CSV import: the file (raw `text/csv` or a `multipart/form-data` upload), its columns, and
each row turned into the columns to write, checked exactly like the directory's create bodies.

A row is keyed by `external_id`, the tenant's own id, so a second run of the same file finds every row
unchanged. A row that cannot be imported is refused with its line number and the reason; the others go
on. Columns per kind (header names, any order; unknown columns refuse the whole file):

- staff: external_id, name, email, phone, branch_id or branch (the branch's name), locale,
  max_open_callbacks, is_manager, is_active, services (the services' external ids, separated by `;`)
- services: external_id, name, branch_id or branch, duration_minutes, price, calcom_event_type_id,
  is_active
- customers: external_id, name, phone, email, locale, time_zone
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationError

from api.directory import phone, region_of
from api.directory_bodies import CustomerCreate, ServiceCreate, StaffCreate
from api.json_types import TEXT_INPUT
from api.problems import ApiProblem, FieldError, invalid
from models.tables import Customer, Service, Staff
from store.directory import RegionHints
from store.imports import ImportTable

DELIMITERS = (",", ";", "\t")
TRUE = {"true", "1", "yes", "y", "ja", "j", "x"}
FALSE = {"false", "0", "no", "n", "nein"}


class ImportKind(StrEnum):
    STAFF = "staff"
    SERVICES = "services"
    CUSTOMERS = "customers"


@dataclass(frozen=True)
class ImportSpec:
    table: ImportTable
    body: type[BaseModel]
    # CSV column → body field; every column the kind accepts (besides the references below).
    columns: Mapping[str, str]
    # What a new row gets for a column the file leaves out or empty (every insert carries all of them).
    defaults: Mapping[str, Any]
    booleans: frozenset[str] = frozenset()
    has_branch: bool = False
    has_services: bool = False


SPECS: Mapping[ImportKind, ImportSpec] = {
    ImportKind.STAFF: ImportSpec(
        table=Staff,
        body=StaffCreate,
        columns={
            "external_id": "external_id",
            "name": "name",
            "email": "email",
            "phone": "phone_number",
            "phone_number": "phone_number",
            "locale": "locale",
            "max_open_callbacks": "max_open_callbacks",
            "is_manager": "is_manager",
            "is_active": "is_active",
        },
        defaults={
            "email": None,
            "phone_number": None,
            "branch_id": None,
            "locale": "de",
            "max_open_callbacks": None,
            "is_manager": False,
            "is_active": True,
        },
        booleans=frozenset({"is_manager", "is_active"}),
        has_branch=True,
        has_services=True,
    ),
    ImportKind.SERVICES: ImportSpec(
        table=Service,
        body=ServiceCreate,
        columns={
            "external_id": "external_id",
            "name": "name",
            "duration_minutes": "duration_minutes",
            "price": "price",
            "calcom_event_type_id": "calcom_event_type_id",
            "is_active": "is_active",
        },
        defaults={
            "branch_id": None,
            "duration_minutes": 30,
            "price": 0,
            "calcom_event_type_id": None,
            "is_active": True,
        },
        booleans=frozenset({"is_active"}),
        has_branch=True,
    ),
    ImportKind.CUSTOMERS: ImportSpec(
        table=Customer,
        body=CustomerCreate,
        columns={
            "external_id": "external_id",
            "name": "name",
            "phone": "phone_number",
            "phone_number": "phone_number",
            "email": "email",
            "locale": "locale",
            "time_zone": "time_zone",
        },
        defaults={"phone_number": None, "email": None, "locale": "de", "time_zone": None},
    ),
}
REQUIRED = ("external_id", "name")


# --- the file ------------------------------------------------------------------------------------


@dataclass
class CsvFile:
    columns: list[str]
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (line, column → cell)


def upload_bytes(raw: bytes, content_type: str) -> bytes:
    """The CSV itself: the body, or the `file` part (else the first part) of a multipart upload."""
    if not content_type.lower().startswith("multipart/form-data"):
        return raw
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1") + raw
    )
    parts = [part for part in message.iter_parts()] if message.is_multipart() else []
    chosen = next((p for p in parts if p.get_param("name", header="content-disposition") == "file"), None)
    chosen = chosen or (parts[0] if parts else None)
    payload = chosen.get_payload(decode=True) if chosen is not None else None
    if not isinstance(payload, bytes):
        raise invalid("file", "the upload has no file part (send the CSV as the part named `file`)")
    return payload


def read_csv(raw: bytes, spec: ImportSpec, max_rows: int) -> CsvFile:
    """Header and rows; a file that cannot be read as a whole is refused with 422 naming the problem."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise invalid("file", "is not UTF-8 text (save the CSV as UTF-8)") from None
    first_line = text.split("\n", 1)[0]
    delimiter = max(DELIMITERS, key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise invalid("file", "is empty: the first line names the columns") from None
    columns = [name.strip().lower() for name in header]
    allowed = set(spec.columns) | ({"branch_id", "branch"} if spec.has_branch else set())
    allowed |= {"services"} if spec.has_services else set()
    errors = [
        FieldError(field="columns", message=f"unknown column {name!r} (known: {', '.join(sorted(allowed))})")
        for name in columns
        if name not in allowed
    ]
    errors += [
        FieldError(field="columns", message=f"the column {name!r} is missing")
        for name in REQUIRED
        if name not in columns
    ]
    if len(set(columns)) != len(columns):
        errors.append(FieldError(field="columns", message="a column is named twice"))
    if errors:
        raise ApiProblem(422, "; ".join(e.message for e in errors), slug="validation-error", errors=errors)
    parsed = CsvFile(columns)
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(parsed.rows) >= max_rows:
                raise invalid("file", f"has more than {max_rows} rows; split it")
            padded = [*cells, *[""] * (len(columns) - len(cells))]
            parsed.rows.append(
                (reader.line_num, dict(zip(columns, (c.strip() for c in padded), strict=False)))
            )
            if len(cells) > len(columns):
                parsed.rows[-1][1]["__extra__"] = "x"
    except csv.Error as exc:
        raise invalid("file", f"line {reader.line_num}: {exc}") from None
    return parsed


# --- a row ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Directory:
    """What rows refer to: the company's branches and services, and the countries phones are read in."""

    company: int
    hints: RegionHints
    branches: list[tuple[int, str]]
    services: dict[str, int]


@dataclass
class ImportRow:
    line: int
    external_id: str
    values: dict[str, Any]  # the columns the file sets
    service_ids: set[int] | None = None


class RowRefused(ValueError):
    pass


def _cell(name: str, value: str, spec: ImportSpec) -> Any:
    if value == "":
        return None
    if name in spec.booleans:
        lowered = value.lower()
        if lowered in TRUE:
            return True
        if lowered in FALSE:
            return False
        raise RowRefused(f"{name}: {value!r} is not yes/no (true, false, 1, 0)")
    if name == "price" and "," in value and "." not in value:
        return value.replace(",", ".")
    return value


def _branch(cells: Mapping[str, str], directory: Directory) -> tuple[bool, int | None]:
    """(given?, branch id) from `branch_id` or `branch` (a name)."""
    by_id, by_name = cells.get("branch_id", ""), cells.get("branch", "")
    if "branch_id" not in cells and "branch" not in cells:
        return False, None
    known = {branch_id for branch_id, _ in directory.branches}
    chosen: int | None = None
    if by_id:
        if not by_id.isdigit() or int(by_id) not in known:
            raise RowRefused(f"branch_id: no such branch in company {directory.company}: {by_id}")
        chosen = int(by_id)
    if by_name:
        named = [branch_id for branch_id, name in directory.branches if name.lower() == by_name.lower()]
        if len(named) != 1:
            problem = "no branch is" if not named else "several branches are"
            raise RowRefused(f"branch: {problem} named {by_name!r}")
        if chosen is not None and chosen != named[0]:
            raise RowRefused(f"branch: {by_name!r} is not branch {chosen}")
        chosen = named[0]
    return True, chosen


def _services(raw: str, directory: Directory) -> set[int]:
    wanted = [part.strip() for part in raw.replace("|", ";").split(";") if part.strip()]
    unknown = [ref for ref in wanted if ref not in directory.services]
    if unknown:
        raise RowRefused(f"services: no service has the external id {', '.join(map(repr, unknown))}")
    return {directory.services[ref] for ref in wanted}


def read_row(line: int, cells: Mapping[str, str], spec: ImportSpec, directory: Directory) -> ImportRow:
    """The row's columns to write, checked like a create body; RowRefused with the reason otherwise."""
    if "__extra__" in cells:
        raise RowRefused("has more cells than the header has columns")
    if not cells.get("external_id"):
        raise RowRefused("external_id: required (re-runs of the file are matched by it)")
    given: dict[str, Any] = {}
    for column, target in spec.columns.items():
        if column in cells:
            given[target] = _cell(target, cells[column], spec)
    branch_given, branch_id = _branch(cells, directory) if spec.has_branch else (False, None)
    if branch_given:
        given["branch_id"] = branch_id
    try:
        checked = spec.body.model_validate(
            {k: v for k, v in given.items() if v is not None}, context=TEXT_INPUT
        )
    except ValidationError as exc:
        raise RowRefused(
            "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'row'}: {str(e['msg']).removeprefix('Value error, ')}"
                for e in exc.errors()
            )
        ) from None
    values: dict[str, Any] = {}
    for target, raw in given.items():
        if raw is None:
            if target in spec.defaults and spec.defaults[target] is not None:
                continue  # an empty cell of a column that cannot be empty: the default, or unchanged
            values[target] = None
        else:
            values[target] = getattr(checked, target)
    if values.get("phone_number"):
        errors: list[FieldError] = []
        region = region_of(directory.hints, values.get("branch_id"))
        values["phone_number"] = phone(values["phone_number"], region, "phone", errors)
        if errors:
            raise RowRefused(f"phone: {errors[0].message}")
    service_ids = _services(cells["services"], directory) if "services" in cells else None
    return ImportRow(line, values.pop("external_id"), values, service_ids)


def changes(row: ImportRow, existing: Any, links: set[int] | None) -> dict[str, Any]:
    """The columns `row` would change on the existing row (empty: unchanged)."""
    changed = {name: value for name, value in row.values.items() if getattr(existing, name) != value}
    if row.service_ids is not None and links is not None and row.service_ids != links:
        changed["service_ids"] = row.service_ids
    return changed
