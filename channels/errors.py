"""How a channel tells the delivery activity whether trying again could help."""

from __future__ import annotations


class DeliveryError(Exception):
    """A send that did not go through. `retryable` is False when the receiver refused the message for
    good (a 4xx answer, an unknown mailbox): repeating the same request would only be refused again.

    The message says what happened in our words and travels on (activity failure, logs); `detail` is what
    the receiver answered, which may echo the recipient's address or the message text: it goes only to
    the delivery log in PostgreSQL (`logged`), never into logs or Temporal (docs/design.md §8)."""

    def __init__(self, message: str, *, retryable: bool, detail: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.detail = detail

    @property
    def logged(self) -> str:
        """The message with the receiver's answer, for the delivery log."""
        return f"{self} — {self.detail}" if self.detail else str(self)


# httpx applies its timeout to each phase (connect, write, each read), so a receiver that drips its
# answer could hold a send far longer; the channels cut the whole request off at this many timeouts.
HTTP_PHASES = 2


def http_deadline(timeout_seconds: float) -> float:
    """The most one webhook or SMS request may take."""
    return timeout_seconds * HTTP_PHASES
