"""What the directory's command groups share (cli/companies.py … cli/customers.py): `list`, `show`,
`create` and `update` over HTTP, with the options of `create`/`update` derived from the API's own body
models (api/directory_bodies.py), so the CLI takes exactly the fields the API does and the API's checks
and messages apply unchanged.

Option values go to the API as typed: JSON-shaped fields (opening hours, closures, working hours) take
JSON, id lists take `1,2,3`; `update --clear FIELD` sets an optional field to null.
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from cli.output import JsonOption, call, emit, fail, fields, table

Columns = Sequence[tuple[str, str]]


def _option_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def _kinds(annotation: Any) -> set[str]:
    """Which shapes a field takes: json (objects, lists of objects), ids (a list of numbers), bool."""
    found: set[str] = set()
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _kinds(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found |= _kinds(arg)
        return found
    if origin is list:
        (item,) = typing.get_args(annotation) or (Any,)
        return {"ids"} if _kinds(item) <= {"int"} else {"json"}
    if origin is dict or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return {"json"}
    if annotation is bool:
        return {"bool"}
    if annotation is int:
        return {"int"}
    return found


def _value(name: str, raw: str, field: FieldInfo) -> Any:
    kinds = _kinds(field.annotation)
    if "json" in kinds:
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise fail(f"{_option_name(name)} is not JSON: {exc}") from None
    if "ids" in kinds:
        parts = [part.strip() for part in raw.split(",") if part.strip()]
        if not all(part.isdigit() for part in parts):
            raise fail(f"{_option_name(name)} takes ids separated by commas, e.g. 1,2,3")
        return [int(part) for part in parts]
    if kinds == {"int"} and raw.strip().lstrip("-").isdigit():
        return int(raw)
    if "bool" in kinds:
        if raw.lower() not in ("true", "false", "yes", "no", "1", "0"):
            raise fail(f"{_option_name(name)} takes true or false")
        return raw.lower() in ("true", "yes", "1")
    return raw


def _help(field: FieldInfo) -> str | None:
    kinds = _kinds(field.annotation)
    extra = " (JSON)" if "json" in kinds else " (ids: 1,2,3)" if "ids" in kinds else ""
    return (field.description or "").strip() + extra or None


def body_command(
    model: type[BaseModel],
    send: Callable[[Any, dict[str, Any], str | None], Any],
    show: Callable[[dict[str, Any]], str],
    *,
    target: str | None = None,
    clearable: bool = False,
    name: str,
) -> Callable[..., None]:
    """A command with one option per field of `model` (required fields as required options, unless it is
    an update); `send(client, body, target_id)` makes the call."""

    def command(as_json: bool = False, clear: list[str] | None = None, **given: Any) -> None:
        target_id = given.pop("target_id", None)
        body = {
            key: _value(key, value, model.model_fields[key])
            for key, value in given.items()
            if value is not None
        }
        for cleared in clear or []:
            key = cleared.replace("-", "_")
            if key not in model.model_fields:
                raise fail(f"--clear {cleared}: no such field (fields: {', '.join(model.model_fields)})")
            body[key] = None
        emit(call(lambda client: send(client, body, target_id)), as_json, show)

    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = []
    if target is not None:
        parameters.append(
            inspect.Parameter("target_id", keyword, annotation=Annotated[str, typer.Argument(help=target)])
        )
    for field_name, field in model.model_fields.items():
        option = typer.Option(_option_name(field_name), help=_help(field))
        if field.is_required() and not clearable:
            parameters.append(inspect.Parameter(field_name, keyword, annotation=Annotated[str, option]))
        else:
            parameters.append(
                inspect.Parameter(field_name, keyword, annotation=Annotated[str | None, option], default=None)
            )
    if clearable:
        clear = Annotated[
            list[str] | None, typer.Option("--clear", help="set this field to null (repeatable)")
        ]
        parameters.append(inspect.Parameter("clear", keyword, annotation=clear, default=None))
    parameters.append(inspect.Parameter("as_json", keyword, annotation=JsonOption, default=False))
    command.__signature__ = inspect.Signature(parameters, return_annotation=None)  # type: ignore[attr-defined]
    command.__annotations__ = {}
    command.__name__ = name
    return command


def register(
    app: typer.Typer,
    *,
    path: str,
    thing: str,
    create: type[BaseModel],
    update: type[BaseModel],
    columns: Columns,
    keys: Sequence[str],
    filters: Sequence[str] = (),
) -> None:
    """`list`, `show`, `create` and `update` for the resource at `path` (e.g. /v1/branches)."""

    def show(record: dict[str, Any]) -> str:
        return fields(record, [key for key in keys if key in record])

    def list_command(
        q: Annotated[str | None, typer.Option("-q", "--search", help="part of the name")] = None,
        page: Annotated[int, typer.Option()] = 1,
        page_size: Annotated[int, typer.Option()] = 50,
        branch_id: Annotated[int | None, typer.Option(help="only this branch's")] = None,
        active: Annotated[
            bool | None, typer.Option("--active/--inactive", help="only active / inactive")
        ] = None,
        company_id: Annotated[int | None, typer.Option(help="super_admin keys only")] = None,
        as_json: JsonOption = False,
    ) -> None:
        params: dict[str, Any] = {"q": q, "page": page, "page_size": page_size, "company_id": company_id}
        if "branch_id" in filters:
            params["branch_id"] = branch_id
        if "is_active" in filters and active is not None:
            params["is_active"] = str(active).lower()
        found = call(lambda client: client.request("GET", path, params=params))
        emit(
            found,
            as_json,
            lambda d: (
                table(d["items"], columns)
                + f"\n\n{len(d['items'])} of {d['total']} (page {d['page']}, {d['page_size']} per page)"
            ),
        )

    list_command.__doc__ = f"List the company's {thing}, by name."
    if not filters:
        _drop_options(list_command, ("branch_id", "active"))
    elif "is_active" not in filters:
        _drop_options(list_command, ("active",))
    app.command("list")(list_command)

    def show_command(row_id: str, as_json: JsonOption = False) -> None:
        emit(call(lambda client: client.request("GET", f"{path}/{row_id}")), as_json, show)

    show_command.__doc__ = f"One of the {thing}."
    app.command("show")(show_command)

    created = body_command(
        create,
        lambda client, body, _: client.request("POST", path, json=body),
        show,
        name=f"{thing}_create",
    )
    app.command("create", help=f"Create one of the {thing} (the API checks every field).")(created)
    updated = body_command(
        update,
        lambda client, body, row_id: client.request("PATCH", f"{path}/{row_id}", json=body),
        show,
        target="its id",
        clearable=True,
        name=f"{thing}_update",
    )
    app.command("update", help="Change the fields given (the others stay); --clear FIELD empties one.")(
        updated
    )


def _drop_options(function: Callable[..., Any], names: Sequence[str]) -> None:
    signature = inspect.signature(function, eval_str=True)
    kept = [p for p in signature.parameters.values() if p.name not in names]
    function.__signature__ = signature.replace(parameters=kept)  # type: ignore[attr-defined]
