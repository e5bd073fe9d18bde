"""Which request each Idempotency-Key carried, among a callback workflow's staff-action Updates.

An Update id derives from the key and the request (models/update_keys.py): a retry is the same Update,
answered by Temporal with the first outcome. A different request under the same key is another Update id,
which this refuses (`IdempotencyKeyReused`, the API answers 422): in the validator when the key's first
Update has already run, in the handler when both arrive at once (handlers start in the order they were
accepted, so the first one wins on replay too). Rebuilt from the history on replay; answered by the
`update_key` query, also once the workflow has finished.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from models.update_keys import KEY_REUSED, KEY_REUSED_MESSAGE, KeyedUpdate, keyed_update


class UpdateKeys:
    def __init__(self) -> None:
        self._requests: dict[str, str] = {}

    def _current(self) -> KeyedUpdate | None:
        info = workflow.current_update_info()
        return keyed_update(info.id) if info is not None else None

    def check(self) -> None:
        """Refuse the current Update when its key came with another request before."""
        keyed = self._current()
        if keyed is not None and self._requests.get(keyed.key, keyed.request) != keyed.request:
            raise ApplicationError(KEY_REUSED_MESSAGE, type=KEY_REUSED, non_retryable=True)

    def record(self) -> None:
        """Check, then remember the current Update's key and request (a no-op for a Signal)."""
        self.check()
        keyed = self._current()
        if keyed is not None:
            self._requests[keyed.key] = keyed.request

    def request_of(self, key: str) -> str | None:
        return self._requests.get(key)
