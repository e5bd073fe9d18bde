"""The tenant convention for workflow ids: `c<company_id>.<base id>`, e.g. `c42.callback-<uuid>`.

Why the company sits in the workflow id: the payload codec (`codec/`) sees nothing of a payload but its
serialization context, and the only tenant-related thing Temporal puts there is the workflow id. Carrying
the company in the id lets the codec pick the company's data key for every input, result, memo, signal,
update and activity payload of that workflow without a lookup.

Why this spelling: the prefix comes first so a company's workflows sort and group together in the Temporal
UI, the base id stays the familiar one (`callback-<uuid>`, `appointment-change-...`), and the `.` ends the
company number so `c4.` never matches `c42.`. No existing id starts with `c` followed by a digit, so the
ids in use before this convention (`callback-<uuid>`, ...) parse as "no company": their workflows keep
running and replaying, and their payloads are encrypted with the shared (non-company) key.

Free of I/O imports: the workflow sandbox may load this module.
"""

from __future__ import annotations

import re
from uuid import UUID

TENANT_PREFIX = "c"
TENANT_SEPARATOR = "."

# Canonical company numbers only (no sign, no leading zero): one company has exactly one prefix.
_TENANT_ID = re.compile(r"^c(?P<company>[1-9][0-9]*)\.(?P<base>.+)$", re.DOTALL)


def tenant_workflow_id(company_id: int, base_id: str) -> str:
    """The workflow id of `base_id` owned by `company_id`.

    Refuses a base id that already carries a company: a nested prefix would hide the first one from
    `company_of_workflow_id` readers that only look at the outer one, and it always means a caller bug.
    """
    if isinstance(company_id, bool) or not isinstance(company_id, int) or company_id < 1:
        raise ValueError(f"company id must be a positive integer, got {company_id!r}")
    if not base_id:
        raise ValueError("the base workflow id must not be empty")
    if _TENANT_ID.match(base_id):
        raise ValueError(f"{base_id!r} already carries a company prefix")
    return f"{TENANT_PREFIX}{company_id}{TENANT_SEPARATOR}{base_id}"


def company_of_workflow_id(workflow_id: str) -> int | None:
    """The company a workflow belongs to, or None for ids outside the tenant convention (old ids,
    system-wide jobs such as `callbacks-reconcile`)."""
    found = _TENANT_ID.match(workflow_id)
    return int(found["company"]) if found else None


def base_of_workflow_id(workflow_id: str) -> str:
    """The id without its company prefix (ids outside the convention come back unchanged)."""
    found = _TENANT_ID.match(workflow_id)
    return found["base"] if found else workflow_id


# --- callbacks -------------------------------------------------------------------------------------

CALLBACK_BASE_PREFIX = "callback-"


def callback_base_id(callback_id: UUID) -> str:
    """`callback-<uuid>`: the workflow id of callbacks started before tenant ids, and the base of the new."""
    return f"{CALLBACK_BASE_PREFIX}{callback_id}"


def callback_workflow_id(company_id: int, callback_id: UUID) -> str:
    """`c<company>.callback-<uuid>` (models/workflow_ids.py): the payload codec encrypts everything of the
    workflow with the company's key."""
    return tenant_workflow_id(company_id, callback_base_id(callback_id))


def stored_callback_workflow_id(callback_id: UUID, stored: str | None) -> str:
    """The workflow of a `callback_requests` row: the id its workflow wrote into the row, or, for rows
    written before that column existed (NULL), the old form `callback-<uuid>`."""
    return stored or callback_base_id(callback_id)


def callback_id_of_workflow(workflow_id: str) -> UUID | None:
    """The callback id in a callback workflow id (either form); None for any other id."""
    base = base_of_workflow_id(workflow_id)
    if not base.startswith(CALLBACK_BASE_PREFIX):
        return None
    try:
        return UUID(base.removeprefix(CALLBACK_BASE_PREFIX))
    except ValueError:
        return None


# --- notification runs -------------------------------------------------------------------------------


def notify_workflow_id(subject_type: str, subject_id: object, seq: int) -> str:
    """`notify-<subject type>-<id>-<seq>`: the base id of the notification run of one event."""
    return f"notify-{subject_type}-{subject_id}-{seq}"


def notify_workflow_id_under(owner_workflow_id: str, base_id: str) -> str:
    """A notification run's id under the company of the workflow whose event it tells (`c42.callback-…`
    has its events told by `c42.notify-…`, so the payload codec encrypts them with company 42's key).
    Workflows started before tenant ids keep the old form: a reset of one finds the runs it started."""
    company = company_of_workflow_id(owner_workflow_id)
    return base_id if company is None else tenant_workflow_id(company, base_id)
