"""How a channel tells the delivery activity whether trying again could help."""

from __future__ import annotations


class DeliveryError(Exception):
    """A send that did not go through. `retryable` is False when the receiver refused the message for
    good (a 4xx answer, an unknown mailbox): repeating the same request would only be refused again."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable
