"""Live session errors, and how the Live server's close frames map to them.

The Live server reports errors by closing the websocket after the handshake with a code and a
reason text (1007 invalid argument or bad key, 1008 model not found / denied, 1011 quota or
server trouble). ``error_from_close`` turns one into a typed error; ``retryable`` tells whether a
new connection may succeed.
"""

from __future__ import annotations

from typing import Final


class LiveError(Exception):
    """Base class of Live session errors. ``retryable``: a new connection may succeed."""

    retryable = False

    def __init__(self, message: str, *, code: int | None = None, reason: str = "") -> None:
        """Keep the close code and server reason with the message."""
        super().__init__(message)
        self.code = code
        self.reason = reason


class AuthenticationError(LiveError):
    """The API key or ephemeral token was rejected."""


class InvalidArgumentError(LiveError):
    """The server rejected a message (1007): an option the model does not accept, bad JSON."""


class ModelNotFoundError(LiveError):
    """The model does not exist or does not support the Live API (1008)."""


class PermissionDeniedError(LiveError):
    """The project may not use this model or feature (1008)."""


class QuotaExceededError(LiveError):
    """Quota or resources exhausted (1011)."""


class InvalidEndpointError(LiveError):
    """The endpoint URL cannot be used (scheme, host or port)."""


class ServerError(LiveError):
    """Internal error, unavailable or deadline exceeded on the server (1011)."""

    retryable = True


class ConnectionLostError(LiveError):
    """The connection ended without a reason we can act on (drop, abnormal or normal close)."""

    retryable = True


class CannotConnectError(LiveError):
    """No connection could be opened (network, DNS, TLS, timeout, HTTP error)."""

    retryable = True


class SetupTimeoutError(CannotConnectError):
    """The server did not answer the setup in time."""


class SessionClosedError(LiveError):
    """The session was closed by its owner (unload, reload, idle, shutdown)."""


_AUTH_WORDS: Final = ("api key", "api_key", "auth token", "access token", "auth_tokens/")


def error_from_close(code: int | None, reason: str) -> LiveError:
    """Map a close code + reason text from the Live server to a typed error."""
    text = reason.lower()
    detail = f"Live server closed the connection ({code}): {reason or 'no reason given'}"
    if code == 1007:
        if any(word in text for word in _AUTH_WORDS):
            return AuthenticationError(detail, code=code, reason=reason)
        return InvalidArgumentError(detail, code=code, reason=reason)
    if code == 1008:
        if "not found" in text or "not supported" in text:
            return ModelNotFoundError(detail, code=code, reason=reason)
        if "api key" in text:
            return AuthenticationError(detail, code=code, reason=reason)
        return PermissionDeniedError(detail, code=code, reason=reason)
    if code == 1011:
        if "quota" in text or "exhausted" in text:
            return QuotaExceededError(detail, code=code, reason=reason)
        return ServerError(detail, code=code, reason=reason)
    return ConnectionLostError(detail, code=code, reason=reason)


class TurnEndedError(LiveError):
    """The model ended its turn abnormally (safety filter, malformed call...) saying nothing."""

    def __init__(self, reason: str) -> None:
        """Keep the server's turnCompleteReason."""
        super().__init__(f"the model ended its turn: {reason}", reason=reason)
