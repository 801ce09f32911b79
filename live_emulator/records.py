"""What the emulator remembers about connections, tokens and resumable sessions."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class ToolResponseRecord:
    """One function response received from the client and what the model did with it.

    Attributes:
        id: the function call id.
        name: the function name (from the call; the response's if the call was unknown).
        behavior: "BLOCKING" or "NON_BLOCKING" (effective, on this model), None if unknown id.
        scheduling: the scheduling applied: "SILENT", "WHEN_IDLE" or "INTERRUPT" for
            NON_BLOCKING results, None when the model was waiting for the result in its turn.
        requested_scheduling: the scheduling the client asked for (sibling field or inside
            ``response``), None if absent.
        response: the response payload.
        status: "applied", or "unknown" (no pending call with that id: never issued, cancelled,
            already answered, or no ``id`` at all — then ``id`` is "").

    """

    id: str
    name: str
    behavior: str | None
    scheduling: str | None
    requested_scheduling: str | None
    response: Any
    status: str


@dataclass(frozen=True)
class FaultRecord:
    """A fault that fired on a connection.

    Attributes:
        kind: the fault kind ("drop", "close", ...).
        trigger: what fired it (``Fault.trigger``, e.g. "after=toolCall#1").
        sent: how many JSON messages the server had sent when it fired.
        pending_calls: ids of the function calls issued and not answered (nor cancelled) at
            that moment, in call order.

    """

    kind: str
    trigger: str
    sent: int
    pending_calls: tuple[str, ...]


@dataclass
class ConnectionRecord:
    """Everything observable about one websocket connection.

    ``setup`` is the setup as received (raw keys); ``effective_setup`` is the normalized
    (camelCase) setup after ephemeral-token locks were applied. ``received`` holds every client
    frame after the setup, ``sent`` every JSON message the server sent (fault frames such as
    malformed or huge ones are listed in ``faults_fired`` instead). ``faults_fired`` lists the
    kinds of the faults that fired, ``fault_log`` the details. ``tool_calls`` is every function
    call the model issued on this connection (``{"id", "name", "args", "behavior"}``);
    ``unanswered_calls`` the ids still without a response (nor cancellation) when the
    connection ended.
    """

    index: int
    path: str
    api_version: str
    method: str
    token: str | None = None
    setup: dict[str, Any] | None = None
    effective_setup: dict[str, Any] | None = None
    model: str | None = None
    received: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)
    """time.perf_counter() when each ``sent`` message was written (benchmarks)."""
    close_code: int | None = None
    close_reason: str | None = None
    closed_by: str | None = None
    resumed_from: str | None = None
    rejection_detail: str | None = None
    tool_responses: list[ToolResponseRecord] = field(default_factory=list)
    handles: list[str] = field(default_factory=list)
    utterances: list[dict[str, Any]] = field(default_factory=list)
    faults_fired: list[str] = field(default_factory=list)
    fault_log: list[FaultRecord] = field(default_factory=list)
    session_id: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    unanswered_calls: list[str] = field(default_factory=list)
    video_frames: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def first_audio_sent_at(self, after: float = 0.0) -> float | None:
        """When the first model audio frame after ``after`` (perf_counter) was written."""
        for msg, at in zip(self.sent, self.sent_at, strict=True):
            parts = msg.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
            if at >= after and any("inlineData" in p for p in parts):
                return at
        return None

    async def wait_closed(self, within: float = 5.0) -> None:
        """Wait until the connection has ended and its record is final."""
        async with asyncio.timeout(within):
            await self.closed.wait()


@dataclass
class PendingCallState:
    """A function call the model issued and whose response has not arrived."""

    id: str
    name: str
    args: dict[str, Any]
    behavior: str


@dataclass
class ResumableState:
    """The session state a resumption handle restores."""

    handle: str
    model: str
    history: list[dict[str, Any]]
    pending: list[PendingCallState]
    created: float
    connection_index: int


@dataclass
class TokenRecord:
    """An issued ephemeral token.

    ``uses`` is what was requested (0 = unlimited); ``uses_left`` is None when unlimited.
    ``setup`` is the normalized locked setup (None if none was given); ``field_mask`` the
    camelCase paths locked (None = the whole setup is locked).
    """

    name: str
    expire_time: datetime
    new_session_expire_time: datetime
    uses: int
    uses_left: int | None
    setup: dict[str, Any] | None
    field_mask: list[str] | None
    sessions: int = 0
