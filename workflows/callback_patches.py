"""The patch ids of the callback workflow, and which of them each generation takes without asking.

A patch id guards a changed command sequence: histories recorded before the change replay without it
(docs/operations.md "Upgrade"). Asking `workflow.patched` records a marker event in the history of every
new run, and each event costs memory in every worker that caches the run: runs started with a generation
(`CallbackWorkflowInput.generation`) take the patches that existed when that generation was introduced
without asking. A patch added later is asked by every run; a new generation lists its predecessor's
patches and the new ones.
"""

from __future__ import annotations

from models.callbacks import GENERATION

NOTIFICATIONS_PATCH = "notifications-v1"  # notifications after each step
SUGGEST_SLOTS_PATCH = "suggest-slots-v1"  # Cal.com slot suggestions after creation
STAFF_DEACTIVATED_PATCH = "staff-deactivated-v1"  # reassign when the assignee is deactivated
DROP_DEAD_REFERENCES = "drop-dead-references-v1"  # a write that finds a reference deleted drops it
CALENDARS_PATCH = "sla-business-hours-v1"  # business hours, dial windows, shifts
HOT_PATH = "hot-path-v1"  # notifications through the outbox; search attributes only when they change

GENERATION_PATCHES: dict[int, frozenset[str]] = {
    GENERATION: frozenset(
        {
            NOTIFICATIONS_PATCH,
            SUGGEST_SLOTS_PATCH,
            STAFF_DEACTIVATED_PATCH,
            DROP_DEAD_REFERENCES,
            CALENDARS_PATCH,
            HOT_PATH,
        }
    )
}
