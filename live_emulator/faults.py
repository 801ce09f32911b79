"""Fault injection: make the emulator misbehave in controlled, observable ways."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .errors import clip_reason

FaultKind = Literal["drop", "close", "delay", "malformed", "huge", "go_away"]

FAULT_KINDS: frozenset[str] = frozenset({"drop", "close", "delay", "malformed", "huge", "go_away"})

# What a frame can be, for the ``before``/``after`` triggers. A frame has every kind that applies:
# its top-level keys, the keys of its ``serverContent``, and for ``modelTurn`` parts "audio"
# (inlineData), "text" (a non-thought text part), "thought", "executableCode",
# "codeExecutionResult".
FRAME_KINDS: frozenset[str] = frozenset(
    {
        # top level
        "setupComplete",
        "serverContent",
        "toolCall",
        "toolCallCancellation",
        "usageMetadata",
        "goAway",
        "sessionResumptionUpdate",
        "voiceActivity",
        "voiceActivityDetectionSignal",
        # serverContent
        "modelTurn",
        "inputTranscription",
        "interimInputTranscription",
        "outputTranscription",
        "interrupted",
        "generationComplete",
        "turnComplete",
        "turnCompleteReason",
        "waitingForInput",
        "interactionStatus",
        "groundingMetadata",
        "urlContextMetadata",
        # modelTurn parts
        "audio",
        "text",
        "thought",
        "executableCode",
        "codeExecutionResult",
    }
)


def frame_kinds(msg: dict[str, Any]) -> frozenset[str]:
    """Return every kind (see FRAME_KINDS) a server message has."""
    kinds = set(msg)
    content = msg.get("serverContent")
    if isinstance(content, dict):
        kinds.update(content)
        for part in (content.get("modelTurn") or {}).get("parts", []):
            if "inlineData" in part:
                kinds.add("audio")
            elif "text" in part:
                kinds.add("thought" if part.get("thought") else "text")
            kinds.update(k for k in ("executableCode", "codeExecutionResult") if k in part)
    return frozenset(kinds)


@dataclass(frozen=True)
class Fault:
    """A fault to inject into a connection.

    Triggers (at most one; counted from when the connection takes the fault, i.e. from the start
    of a new connection or from the moment of injection for an already open one):
        after_server_messages: fires as soon as the server has sent N messages (0 = before
            setupComplete on a new connection; 1 = right after it).
        on_turn: fires when model turn N (1-based) starts, before its first frame.
        before: fires just before the ``nth`` frame of this kind (FRAME_KINDS) is sent, e.g.
            ``before="audio", nth=3`` (the third reply audio chunk), ``before="text"`` (a TEXT
            reply's text part), ``before="outputTranscription", nth=2``.
        after: fires right after the ``nth`` frame of this kind was sent (and flushed to the
            socket), e.g. ``after="toolCall"``, ``after="turnComplete", nth=2``,
            ``after="sessionResumptionUpdate"``.
        at_audio_chunk: the same as ``before="audio", nth=N`` (kept for older tests).
    With no trigger the fault fires as soon as the session is set up (right after setupComplete),
    or immediately for an open connection; a ``delay`` fault with no trigger applies from the
    first frame.

    Kinds:
        drop: abort the TCP connection, no close frame.
        close: send a close frame with ``code`` and ``reason``.
        delay: sleep ``seconds`` before each later outgoing frame (a slow server).
        malformed: send one binary frame that is not valid JSON, then carry on.
        huge: send one ~``size`` byte (default EmulatorConfig.huge_frame_bytes) valid JSON frame
            (a modelTurn audio part), then carry on.
        go_away: send goAway with ``time_left_s`` and end the connection when it runs out.

    ``persistent`` faults apply to every later connection instead of firing once.
    """

    kind: FaultKind
    after_server_messages: int | None = None
    on_turn: int | None = None
    at_audio_chunk: int | None = None
    before: str | None = None
    after: str | None = None
    nth: int = 1
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
        triggers = [
            self.after_server_messages,
            self.on_turn,
            self.at_audio_chunk,
            self.before,
            self.after,
        ]
        if sum(t is not None for t in triggers) > 1:
            raise ValueError("a fault takes at most one trigger")
        for kind in (self.before, self.after):
            if kind is not None and kind not in FRAME_KINDS:
                raise ValueError(f"unknown frame kind {kind!r}")
        if self.nth < 1:
            raise ValueError("nth counts from 1")
        if self.at_audio_chunk is not None:
            object.__setattr__(self, "before", "audio")
            object.__setattr__(self, "nth", self.at_audio_chunk)
        # A close frame carries at most 123 bytes of reason, as the real server's do.
        object.__setattr__(self, "reason", clip_reason(self.reason))

    @property
    def trigger(self) -> str:
        """A readable description of the trigger (kept in the connection record)."""
        if self.after_server_messages is not None:
            return f"after_server_messages={self.after_server_messages}"
        if self.on_turn is not None:
            return f"on_turn={self.on_turn}"
        if self.before is not None:
            return f"before={self.before}#{self.nth}"
        if self.after is not None:
            return f"after={self.after}#{self.nth}"
        return "ready"
