"""Fault injection: make the emulator misbehave in controlled, observable ways."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import clip_reason

FaultKind = Literal["drop", "close", "delay", "malformed", "huge", "go_away"]

FAULT_KINDS: frozenset[str] = frozenset({"drop", "close", "delay", "malformed", "huge", "go_away"})


@dataclass(frozen=True)
class Fault:
    """A fault to inject into a connection.

    Triggers (at most one; counted from when the connection takes the fault, i.e. from the start
    of a new connection or from the moment of injection for an already open one):
        after_server_messages: fires as soon as the server has sent N messages (0 = before
            setupComplete on a new connection; 1 = right after it).
        on_turn: fires when model turn N (1-based) starts, before its first frame.
        at_audio_chunk: fires just before audio chunk N (1-based) of the replies is sent.
    With no trigger the fault fires as soon as the session is set up (right after setupComplete),
    or immediately for an open connection; a ``delay`` fault with no trigger applies from the
    first frame.

    Kinds:
        drop: abort the TCP connection, no close frame.
        close: send a close frame with ``code`` and ``reason``.
        delay: sleep ``seconds`` before each later outgoing frame (a slow server).
        malformed: send one binary frame that is not valid JSON, then carry on.
        huge: send one ~``size`` byte (default EmulatorConfig.huge_frame_bytes) valid JSON frame.
        go_away: send goAway with ``time_left_s`` and end the connection when it runs out.

    ``persistent`` faults apply to every later connection instead of firing once.
    """

    kind: FaultKind
    after_server_messages: int | None = None
    on_turn: int | None = None
    at_audio_chunk: int | None = None
    code: int = 1011
    reason: str = "Internal error encountered."
    seconds: float = 0.0
    time_left_s: float = 1.0
    size: int | None = None
    persistent: bool = False

    def __post_init__(self) -> None:
        """Check the fault is well formed."""
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        triggers = [self.after_server_messages, self.on_turn, self.at_audio_chunk]
        if sum(t is not None for t in triggers) > 1:
            raise ValueError("a fault takes at most one trigger")
        # A close frame carries at most 123 bytes of reason, as the real server's do.
        object.__setattr__(self, "reason", clip_reason(self.reason))
