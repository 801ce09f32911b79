"""Scripted conversations: scenario files and the reply steps shared with the rule engine."""

from __future__ import annotations

from dataclasses import dataclass, field
import json
from pathlib import Path
import re
from typing import Any


@dataclass(frozen=True)
class Say:
    """Speak (AUDIO) or write (TEXT) ``text``, with output transcription when requested."""

    text: str


@dataclass(frozen=True)
class Thought:
    """A thought summary part (sent only when includeThoughts is on and the model shows them)."""

    text: str


@dataclass(frozen=True)
class ToolCall:
    """Call a declared function.

    ``name`` matches a declared name exactly, else as a case-insensitive substring; an undeclared
    name is called as given. ``wait_for_response`` None means: wait when the function is
    BLOCKING on this model.
    """

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    wait_for_response: bool | None = None


@dataclass(frozen=True)
class SayResult:
    """Speak a confirmation derived from the last tool response (success or error)."""


@dataclass(frozen=True)
class Delay:
    """Pause the reply (no frames) for ``seconds``."""

    seconds: float


@dataclass(frozen=True)
class Interrupted:
    """The server interrupts its own turn (``interrupted`` then ``turnComplete``)."""


@dataclass(frozen=True)
class GoAway:
    """Send goAway now; the connection ends after ``time_left_s``."""

    time_left_s: float


@dataclass(frozen=True)
class Grounding:
    """Send ``serverContent.groundingMetadata`` (a generated search result when None)."""

    metadata: dict[str, Any] | None = None
    query: str = ""


@dataclass(frozen=True)
class EndTurn:
    """End the turn with these turnComplete fields (else a plain turnComplete)."""

    turn_complete_reason: str | None = None
    waiting_for_input: bool | None = None


Step = Say | Thought | ToolCall | SayResult | Delay | Interrupted | GoAway | Grounding | EndTurn


@dataclass(frozen=True)
class ScenarioTurn:
    """One scripted exchange: what input it matches and the reply steps."""

    text: re.Pattern[str] | None
    audio: bool
    transcript: str | None
    steps: tuple[Step, ...]

    def matches(self, *, text: str | None, is_audio: bool) -> bool:
        """Whether this turn applies to a user input (audio matches on ``transcript`` text)."""
        if is_audio and self.audio:
            return True
        if self.text is not None and text is not None:
            return self.text.search(text) is not None
        return False


class ScenarioError(ValueError):
    """A scenario file is malformed."""


def _parse_step(raw: Any) -> Step:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ScenarioError(f"a step is an object with exactly one key: {raw!r}")
    ((kind, value),) = raw.items()
    if kind == "say":
        return Say(str(value))
    if kind == "thought":
        return Thought(str(value))
    if kind == "tool_call":
        if not isinstance(value, dict) or "name" not in value:
            raise ScenarioError("tool_call needs a name")
        wait = value.get("wait_for_response")
        return ToolCall(str(value["name"]), dict(value.get("args", {})), wait)
    if kind == "say_result":
        return SayResult()
    if kind == "delay":
        return Delay(float(value))
    if kind == "interrupted":
        return Interrupted()
    if kind == "go_away":
        return GoAway(float(value))
    if kind == "grounding":
        if value is True:
            return Grounding()
        if isinstance(value, dict):
            return Grounding(value.get("metadata"), str(value.get("query", "")))
        raise ScenarioError("grounding is true or {metadata, query}")
    if kind == "end":
        value = value or {}
        reason = value.get("turnCompleteReason")
        if reason is not None and reason not in _TURN_COMPLETE_REASONS:
            raise ScenarioError(f"unknown turnCompleteReason {reason}")
        return EndTurn(reason, value.get("waitingForInput"))
    raise ScenarioError(f"unknown step {kind!r}")


_TURN_COMPLETE_REASONS = frozenset(
    {
        "TURN_COMPLETE_REASON_UNSPECIFIED",
        "MALFORMED_FUNCTION_CALL",
        "RESPONSE_REJECTED",
        "NEED_MORE_INPUT",
    }
)


@dataclass
class Scenario:
    """An ordered list of scripted turns with a cursor shared by all connections.

    A user input is matched against the next unconsumed turn only; when it matches, the turn is
    consumed, else the rule engine answers and the cursor stays.
    """

    turns: list[ScenarioTurn]
    cursor: int = 0

    @classmethod
    def from_dict(cls, data: Any) -> Scenario:
        """Build a scenario from its JSON form (see README.md)."""
        raw_turns = data.get("turns") if isinstance(data, dict) else data
        if not isinstance(raw_turns, list):
            raise ScenarioError("a scenario is {'turns': [...]} or a list of turns")
        turns: list[ScenarioTurn] = []
        for raw in raw_turns:
            if not isinstance(raw, dict):
                raise ScenarioError("a turn is an object")
            match = raw.get("match", {})
            if isinstance(match, str):
                match = {"audio": True} if match == "audio" else {"text": match}
            pattern = match.get("text")
            turns.append(
                ScenarioTurn(
                    text=re.compile(pattern, re.IGNORECASE) if pattern is not None else None,
                    audio=bool(match.get("audio", False)),
                    transcript=raw.get("transcript"),
                    steps=tuple(_parse_step(s) for s in raw.get("steps", [])),
                )
            )
        return cls(turns)

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        """Read a scenario JSON file."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def peek(self) -> ScenarioTurn | None:
        """The next unconsumed turn."""
        return self.turns[self.cursor] if self.cursor < len(self.turns) else None

    def take(self, *, text: str | None, is_audio: bool) -> ScenarioTurn | None:
        """Consume and return the next turn if it matches this input."""
        turn = self.peek()
        if turn is not None and turn.matches(text=text, is_audio=is_audio):
            self.cursor += 1
            return turn
        return None
