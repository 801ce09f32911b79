"""Errors that end a connection with a websocket close frame, as the real server does."""

from __future__ import annotations

INVALID_ARGUMENT = "Request contains an invalid argument."
BAD_API_KEY = "API key not valid. Please pass a valid API key."
INTERNAL = "Internal error encountered."
MAX_REASON_BYTES = 123


def clip_reason(reason: str) -> str:
    """Return ``reason`` clipped to the 123 bytes a websocket close frame can carry."""
    data = reason.encode("utf-8")
    if len(data) <= MAX_REASON_BYTES:
        return reason
    return data[:MAX_REASON_BYTES].decode("utf-8", errors="ignore")


class ProtocolError(Exception):
    """The server closes the connection with ``code`` and ``reason``.

    ``detail`` is an emulator-only explanation kept in the connection record (the wire carries
    only the realistic ``reason``).
    """

    def __init__(self, code: int, reason: str, detail: str | None = None) -> None:
        """Store the close code, the reason and an optional detail."""
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = clip_reason(reason)
        self.detail = detail or reason


class SessionEnded(Exception):
    """Raised inside the emulator when the connection is gone; unwinds the session's tasks."""
