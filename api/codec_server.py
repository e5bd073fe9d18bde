"""The codec server: `/codec/decode` and `/codec/encode` for the Temporal Web UI and CLI.

Temporal stores only ciphertext (codec/); whoever wants to read a workflow's inputs, state, memo or
failures in the UI or with `temporal workflow show` sends its payloads here. The wire format is Temporal's
remote codec protocol: POST a JSON `{"payloads": [...]}` (protobuf JSON of `Payloads`), get the same shape
back. The UI adds `X-Namespace`; a caller may add `X-Workflow-Id` (recorded, and checked against its key).

Who may decode what:
- a staff, admin or super_admin API key (`service` keys never: they create callbacks, they do not read
  histories), presented as `Authorization: Bearer <key>` (CLI: `--codec-auth "Bearer <key>"`) or as the
  staff console's sign-in, which the browser sends along when the UI's codec setting "include cross-origin
  credentials" is on (the console reader is installed by the console, see `SESSION_READER`);
- a staff or admin key decodes only payloads encrypted for its own company (`encryption-company-id`);
- payloads encrypted with the shared key (no company: system jobs, and callbacks started before tenant
  workflow ids, which can be any company's) only for super_admin;
- a request with any payload outside the key's reach is refused whole (403); payloads that are not
  encrypted pass through unchanged (histories from before the codec), and payloads whose key is gone
  (rotated out, company shredded) come back still encrypted.
Every authenticated request, allowed or refused, is written to `codec_audit` (who, which companies,
which workflow, when) and logged in one line without personal data.

Encoding (the UI encodes what an operator types, e.g. a signal's input) is for the key's company (or, for
super_admin, the company of `X-Workflow-Id`, else the shared key).

CORS: only the UI origins of `CALLBACKS_CODEC_CORS_ORIGINS`, with credentials. A console session is only
accepted from those origins, so no other page can make a signed-in browser decode for it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from api.auth import WORKERS, Principal, Role, principal_of
from api.deps import Deps, get_deps
from api.problems import ApiProblem
from codec.keys import KeyUnavailable
from codec.payload import META_COMPANY_ID, EncryptionCodec, PayloadDecryptError, is_encrypted
from models.workflow_ids import company_of_workflow_id
from store import api_keys, codec_audit
from store.db import transaction

log = logging.getLogger("callbacks.codec")

# The attribute of `app.state` where the console puts its reader of signed-in sessions.
SESSION_READER = "codec_session_reader"
SessionReader = Callable[[Request, Deps], Awaitable[Principal | None]]

WORKFLOW_HEADER = "x-workflow-id"
ALLOWED_HEADERS = "authorization, content-type, x-namespace, x-workflow-id"
MAX_PAYLOADS = 1000

router = APIRouter(prefix="/codec", tags=["codec"])


@dataclass(frozen=True)
class Caller:
    principal: Principal
    via: str  # "bearer" or "session"


def _origin(request: Request, deps: Deps) -> str | None:
    """The request's Origin when it is one of the configured UI origins."""
    origin = (request.headers.get("origin") or "").rstrip("/")
    return origin if origin and origin in deps.settings.codec_origins() else None


def cors_headers(request: Request, deps: Deps) -> dict[str, str]:
    origin = _origin(request, deps)
    if origin is None:
        return {"Vary": "Origin"}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


def _problem(request: Request, deps: Deps, status: int, detail: str, slug: str) -> ApiProblem:
    headers = cors_headers(request, deps)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="callbacks"'
    return ApiProblem(status, detail, slug=slug, headers=headers)


async def _caller(request: Request, deps: Deps) -> Caller:
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, secret = authorization.partition(" ")
        secret = secret.strip()
        record = None
        if scheme.lower() == "bearer" and secret and secret.isascii() and len(secret) <= 128:
            async with transaction(deps.sessions) as session:
                record = await api_keys.authenticate(session, secret, datetime.now(UTC))
        if record is None:
            raise _problem(request, deps, 401, "the API key is unknown or revoked", "unauthorized")
        return Caller(principal_of(record), "bearer")
    reader: SessionReader | None = getattr(request.app.state, SESSION_READER, None)
    if reader is not None and _origin(request, deps) is not None:
        principal = await reader(request, deps)
        if principal is not None:
            return Caller(principal, "session")
    raise _problem(
        request,
        deps,
        401,
        "send a staff or admin API key as `Authorization: Bearer <key>`, or sign in to the staff console "
        "and let the Temporal UI include cross-origin credentials",
        "unauthorized",
    )


def _codec(request: Request, deps: Deps) -> EncryptionCodec:
    """The codec of this process's Temporal client: the same keys the workers write with."""
    codec = deps.callbacks.temporal.data_converter.payload_codec
    if not isinstance(codec, EncryptionCodec):
        raise _problem(request, deps, 503, "this process has no payload codec configured", "no-codec")
    return codec


def _is_payload(item: Any) -> bool:
    """A payload as the document states it: protobuf's JSON parser would also take a null `data` or
    metadata value (as empty), which the document refuses, so the API refuses it too."""
    if not isinstance(item, dict):
        return False
    metadata = item.get("metadata", {})
    return (
        isinstance(metadata, dict)
        and all(isinstance(value, str) for value in metadata.values())
        and isinstance(item.get("data", ""), str)
    )


async def _payloads(request: Request, deps: Deps) -> list[Payload]:
    try:
        data = json.loads(await request.body())
        items = data.get("payloads", []) if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(_is_payload(item) for item in items):
            raise json_format.ParseError(
                'the body is not a JSON object {"payloads": [{"metadata": {name: base64}, "data": base64}]}'
            )
        parsed = json_format.ParseDict(data, Payloads(), ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError) as error:
        raise _problem(request, deps, 400, f"not a JSON Payloads message: {error}", "bad-payloads") from None
    if len(parsed.payloads) > MAX_PAYLOADS:
        raise _problem(request, deps, 413, f"at most {MAX_PAYLOADS} payloads per request", "too-many")
    return list(parsed.payloads)


def _company_of(payload: Payload) -> int | None:
    raw = payload.metadata.get(META_COMPANY_ID)
    if raw is None:
        return None
    text = raw.decode("ascii", "replace")
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"invalid {META_COMPANY_ID} {text!r}")
    return int(text)


def _refusal(principal: Principal, companies: set[int | None], workflow_company: int | None) -> str | None:
    """Why this key may not decode payloads of these companies (None: it may)."""
    if principal.role not in WORKERS:
        return f"a {principal.role.value} key may not read workflow payloads"
    if principal.role is Role.SUPER_ADMIN:
        return None
    if workflow_company is not None and workflow_company != principal.company_id:
        return "the workflow belongs to another company"
    if None in companies:
        return "payloads under the shared key (no company) are readable by super_admin keys only"
    if any(company != principal.company_id for company in companies):
        return "payloads of another company"
    return None


def _names(companies: set[int | None]) -> str:
    named = (["shared"] if None in companies else []) + [str(c) for c in sorted(c for c in companies if c)]
    return ", ".join(named) or "-"


async def _audit(
    request: Request,
    deps: Deps,
    caller: Caller,
    operation: str,
    companies: set[int | None],
    count: int,
    *,
    reason: str | None,
) -> None:
    principal = caller.principal
    namespace = request.headers.get("x-namespace")
    workflow_id = request.headers.get(WORKFLOW_HEADER)
    access = codec_audit.CodecAccess(
        operation=operation,
        granted=reason is None,
        api_key_id=principal.key_id,
        key_prefix=principal.prefix,
        role=principal.role.value,
        key_company_id=principal.company_id,
        via=caller.via,
        namespace=namespace,
        workflow_id=workflow_id,
        payload_companies=list(companies),
        payload_count=count,
        reason=reason,
        origin=request.headers.get("origin"),
    )
    async with transaction(deps.sessions) as session:
        await codec_audit.record(session, access)
    log.info(
        "codec %s %s: %s key %s (company %s, via %s), %d payloads of companies %s, "
        "namespace %s, workflow %s%s",
        operation,
        "granted" if reason is None else "refused",
        principal.role.value,
        principal.prefix,
        principal.company_id,
        caller.via,
        count,
        _names(companies),
        namespace or "-",
        workflow_id or "-",
        "" if reason is None else f" ({reason})",
    )


def _json(request: Request, deps: Deps, payloads: list[Payload]) -> Response:
    return Response(
        json_format.MessageToJson(Payloads(payloads=payloads)),
        media_type="application/json",
        headers=cors_headers(request, deps),
    )


DepsDep = Annotated[Deps, Depends(get_deps)]


# Registered on each operation's own path, so `OPTIONS` belongs to the same resource as its `POST`.
@router.options("/decode", include_in_schema=False)
@router.options("/encode", include_in_schema=False)
async def preflight(request: Request, deps: DepsDep) -> Response:
    """CORS preflight of the UI: allowed only for the configured UI origins."""
    if _origin(request, deps) is None:
        return Response(status_code=403, headers={"Vary": "Origin"})
    headers = cors_headers(request, deps)
    headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    headers["Access-Control-Max-Age"] = "600"
    return Response(status_code=204, headers=headers)


# The body both operations take: Temporal's `Payloads` message as protobuf JSON.
PAYLOADS_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "payloads": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "metadata": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string", "format": "byte"},
                                    },
                                    "data": {"type": "string", "format": "byte"},
                                },
                            },
                        }
                    },
                }
            }
        },
    }
}


@router.post("/decode", summary="Decode payloads for the Temporal UI or CLI", openapi_extra=PAYLOADS_BODY)
async def decode(request: Request, deps: DepsDep) -> Response:
    """Decrypt the given payloads: only a staff/admin key's own company's (super_admin: any). Refused
    whole (403) when any encrypted payload is out of the key's reach; every call is audited."""
    caller = await _caller(request, deps)
    codec = _codec(request, deps)
    payloads = await _payloads(request, deps)
    encrypted = [p for p in payloads if is_encrypted(p)]
    try:
        companies = {_company_of(p) for p in encrypted}
    except ValueError as error:
        raise _problem(request, deps, 400, str(error), "bad-payloads") from None
    workflow_company = company_of_workflow_id(request.headers.get(WORKFLOW_HEADER) or "")
    reason = _refusal(caller.principal, companies, workflow_company)
    unreadable = 0
    decoded: list[Payload] = []
    if reason is None:
        for payload in payloads:
            if not is_encrypted(payload):
                decoded.append(payload)
                continue
            try:
                decoded.append(codec.decrypt(payload))
            except (KeyUnavailable, PayloadDecryptError):
                unreadable += 1
                decoded.append(payload)  # the key is gone (rotated out, shredded) or the payload is bad
    note = f"{unreadable} payloads unreadable" if unreadable else None
    await _audit(request, deps, caller, "decode", companies, len(payloads), reason=reason)
    if reason is not None:
        raise _problem(request, deps, 403, reason, "forbidden")
    if note:
        log.warning("codec decode: %s (key removed or company shredded)", note)
    return _json(request, deps, decoded)


@router.post("/encode", summary="Encode payloads for the Temporal UI or CLI", openapi_extra=PAYLOADS_BODY)
async def encode(request: Request, deps: DepsDep) -> Response:
    """Encrypt the given payloads for the key's company (super_admin: the company of `X-Workflow-Id`,
    else the shared key), as the workers would for that company's workflows."""
    caller = await _caller(request, deps)
    codec = _codec(request, deps)
    payloads = await _payloads(request, deps)
    principal = caller.principal
    workflow_company = company_of_workflow_id(request.headers.get(WORKFLOW_HEADER) or "")
    company = workflow_company if principal.role is Role.SUPER_ADMIN else principal.company_id
    reason = _refusal(principal, {company}, workflow_company)
    await _audit(request, deps, caller, "encode", {company}, len(payloads), reason=reason)
    if reason is not None:
        raise _problem(request, deps, 403, reason, "forbidden")
    encoded = await EncryptionCodec(codec.keyring, company).encode(payloads)
    return _json(request, deps, encoded)


def payloads_json(payloads: list[Payload]) -> dict[str, Any]:
    """A `Payloads` message as the JSON the codec endpoints take (for clients and tests)."""
    converted: dict[str, Any] = json_format.MessageToDict(Payloads(payloads=payloads))
    return converted
