"""One Live websocket: connect (API key or ephemeral token), setup handshake, send, receive.

Close frames after the handshake are how the Live server reports errors; they become typed
exceptions here (see ``error_from_close``). Reconnection and resumption live in session.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
import logging
from typing import Any, Final, Self
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import Close

from .messages import ProtocolError, ServerEvent, SetupComplete, encode, parse_server_message

_LOGGER = logging.getLogger(__name__)

DEFAULT_BASE_URL: Final = "wss://generativelanguage.googleapis.com"
MAX_FRAME_BYTES: Final = 16 * 1024 * 1024
SERVICE: Final = "google.ai.generativelanguage.{version}.GenerativeService.{method}"


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Endpoint
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to connect: Google's service or an emulator/proxy, with a key or a token."""

    api_key: str | None = None
    token: str | None = None  # "auth_tokens/..." ephemeral token (Constrained endpoint)
    base_url: str = DEFAULT_BASE_URL

    def __post_init__(self) -> None:
        """Exactly one credential."""
        if bool(self.api_key) == bool(self.token):
            raise ValueError("an Endpoint needs exactly one of api_key or token")

    def __repr__(self) -> str:
        """Never show the credential."""
        kind = "token" if self.token else "api_key"
        return f"Endpoint(base_url={self.base_url!r}, auth={kind})"

    @property
    def ws_base(self) -> str:
        """Websocket base URL (http -> ws, https -> wss)."""
        parts = urlsplit(self.base_url.rstrip("/"))
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        return urlunsplit((scheme, parts.netloc, parts.path, "", ""))

    @property
    def http_base(self) -> str:
        """REST base URL (ws -> http, wss -> https)."""
        parts = urlsplit(self.base_url.rstrip("/"))
        scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
        return urlunsplit((scheme, parts.netloc, parts.path, "", ""))

    def url(self, version: str) -> str:
        """Websocket URL of the BidiGenerateContent service for ``version``."""
        if self.token:
            service = SERVICE.format(version="v1alpha", method="BidiGenerateContentConstrained")
        else:
            service = SERVICE.format(version=version, method="BidiGenerateContent")
        return f"{self.ws_base}/ws/{service}"

    def headers(self) -> dict[str, str]:
        """Authentication headers."""
        if self.token:
            return {"Authorization": f"Token {self.token}"}
        assert self.api_key is not None
        return {"x-goog-api-key": self.api_key}


# --------------------------------------------------------------------------------------------
# Connection
# --------------------------------------------------------------------------------------------


class LiveConnection:
    """An open, set-up Live websocket."""

    def __init__(self, ws: ClientConnection, session_id: str | None) -> None:
        """Wrap an open websocket whose setup completed."""
        self._ws = ws
        self.session_id = session_id
        self.sent_count = 0  # client messages sent after setup

    @classmethod
    async def open(
        cls,
        endpoint: Endpoint,
        setup: Mapping[str, Any],
        *,
        version: str = "v1beta",
        setup_timeout: float = 15.0,
    ) -> Self:
        """Connect, send ``setup`` and wait for setupComplete."""
        try:
            async with asyncio.timeout(setup_timeout):
                ws = await connect(
                    endpoint.url(version),
                    additional_headers=endpoint.headers(),
                    max_size=MAX_FRAME_BYTES,
                    open_timeout=None,
                    ping_interval=20,
                    ping_timeout=20,
                    close_timeout=2,
                    compression=None,
                    user_agent_header="gemini-live-ha",
                )
        except TimeoutError as err:
            raise CannotConnectError("timed out connecting to the Live service") from err
        except InvalidStatus as err:
            status = err.response.status_code
            if status in (401, 403):
                raise AuthenticationError(
                    f"Live service refused the credentials (HTTP {status})"
                ) from err
            raise CannotConnectError(f"Live service answered HTTP {status}") from err
        except (OSError, InvalidHandshake) as err:
            raise CannotConnectError(f"cannot connect to the Live service: {err}") from err
        try:
            await ws.send(encode(setup))
            async with asyncio.timeout(setup_timeout):
                while True:
                    for event in await _recv_events(ws):
                        if isinstance(event, SetupComplete):
                            return cls(ws, event.session_id)
                        _LOGGER.debug("Ignoring %s before setupComplete", type(event).__name__)
        except TimeoutError as err:
            await ws.close()
            raise SetupTimeoutError("the Live service did not complete the setup") from err
        except BaseException:
            await ws.close()
            raise

    async def send(self, message: Mapping[str, Any]) -> None:
        """Send one client message."""
        await self.send_text(encode(message))

    async def send_text(self, frame: str) -> None:
        """Send one encoded client message."""
        try:
            await self._ws.send(frame)
        except ConnectionClosed as err:
            raise _closed_error(err) from err
        self.sent_count += 1

    async def recv(self) -> list[ServerEvent]:
        """Wait for the next frame's events. Malformed frames are logged and skipped."""
        return await _recv_events(self._ws)

    async def close(self) -> None:
        """Close the websocket (normal closure)."""
        await self._ws.close()

    @property
    def closed(self) -> bool:
        """Whether the websocket is closed or closing."""
        return self._ws.close_code is not None


def _closed_error(err: ConnectionClosed) -> LiveError:
    sent: Close | None = err.sent
    if sent is not None and sent.code == 1009:
        return ConnectionLostError(
            "the Live server sent a frame larger than we accept", code=1009, reason=sent.reason
        )
    close: Close | None = err.rcvd
    if close is None:
        return ConnectionLostError("the Live connection dropped without a close frame", code=1006)
    return error_from_close(close.code, close.reason)


async def _recv_events(ws: ClientConnection) -> list[ServerEvent]:
    while True:
        try:
            frame = await ws.recv()
        except ConnectionClosed as err:
            raise _closed_error(err) from err
        try:
            return parse_server_message(frame)
        except ProtocolError as err:
            head = frame[:120]
            preview = head if isinstance(head, str) else head.decode(errors="replace")
            _LOGGER.warning("Skipping malformed Live server frame (%s): %r", err, preview)
