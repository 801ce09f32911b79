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

    Client-robustness shapes the Gemini API is not known to send (see README): ``stream_args``
    streams the arguments in Vertex AI's ``partialArgs``/``willContinue`` form before the
    complete call; ``omit_id`` sends the call without an ``id``.
    """

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    wait_for_response: bool | None = None
    stream_args: bool = False
    omit_id: bool = False


@dataclass(frozen=True)
class AwaitResults:
    """End the turn while this interaction's NON_BLOCKING calls run, then continue.

    If every call made so far in the interaction is answered already, nothing happens. Else the
    turn ends (generationComplete, turnComplete, with ``interactionStatus: IN_PROGRESS`` on
    models that send it), the model waits for the responses and the following steps form the
    next turn of the same interaction.
    """


@dataclass(frozen=True)
class ExecutableCode:
    """A modelTurn ``executableCode`` part."""

    code: str
    language: str = "PYTHON"


@dataclass(frozen=True)
class CodeExecution:
    """An ``executableCode`` part, then its ``codeExecutionResult`` part."""

    code: str
    output: str = ""
    outcome: str = "OUTCOME_OK"


@dataclass(frozen=True)
class UrlContext:
    """``serverContent.urlContextMetadata`` for ``urls`` (or a verbatim ``metadata``)."""

    urls: tuple[str, ...] = ()
    status: str = "URL_RETRIEVAL_STATUS_SUCCESS"
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class VoiceActivitySignal:
    """A top-level ``voiceActivity`` message (``type`` ACTIVITY_START/ACTIVITY_END)."""

    type: str
    audio_offset_s: float | None = None


@dataclass(frozen=True)
class VadSignal:
    """A top-level ``voiceActivityDetectionSignal`` (allowlisted-only on the real API)."""

    type: str


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
    text: str = ""


@dataclass(frozen=True)
class EndTurn:
    """End the turn with these turnComplete fields (else a plain turnComplete).

    ``interaction_status`` overrides the computed one (models that send it only).
    """

    turn_complete_reason: str | None = None
    waiting_for_input: bool | None = None
    interaction_status: str | None = None


Step = (
    Say
    | Thought
    | ToolCall
    | AwaitResults
    | SayResult
    | Delay
    | Interrupted
    | GoAway
    | Grounding
    | ExecutableCode
    | CodeExecution
    | UrlContext
    | VoiceActivitySignal
    | VadSignal
    | EndTurn
)


@dataclass(frozen=True)
class ScenarioTurn:
    """One scripted exchange: what input it matches and the reply steps."""

    text: re.Pattern[str] | None
    audio: bool
    transcript: str | None
    steps: tuple[Step, ...]
    video: bool = False

    def matches(self, *, text: str | None, is_audio: bool, is_video: bool = False) -> bool:
        """Whether this turn applies to a user input (audio matches on ``transcript`` text).

        ``video`` turns match a video frame (proactive video).
        """
        if is_video:
            return self.video
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
        return ToolCall(
            str(value["name"]),
            dict(value.get("args", {})),
            wait,
            stream_args=bool(value.get("stream_args", False)),
            omit_id=bool(value.get("omit_id", False)),
        )
    if kind == "await_results":
        return AwaitResults()
    if kind == "executable_code":
        if isinstance(value, str):
            return ExecutableCode(value)
        return ExecutableCode(str(value["code"]), str(value.get("language", "PYTHON")))
    if kind == "code_execution":
        if not isinstance(value, dict) or "code" not in value:
            raise ScenarioError("code_execution needs code")
        outcome = str(value.get("outcome", "OUTCOME_OK"))
        _check(outcome, OUTCOMES, "outcome")
        return CodeExecution(str(value["code"]), str(value.get("output", "")), outcome)
    if kind == "url_context":
        if isinstance(value, dict) and "metadata" in value:
            return UrlContext(metadata=dict(value["metadata"]))
        if isinstance(value, dict):
            status = str(value.get("status", "URL_RETRIEVAL_STATUS_SUCCESS"))
            _check(status, URL_STATUSES, "urlRetrievalStatus")
            return UrlContext(tuple(str(u) for u in value.get("urls", [])), status)
        return UrlContext(tuple(str(u) for u in value))
    if kind == "voice_activity":
        if isinstance(value, str):
            value = {"type": value}
        _check(str(value["type"]), VOICE_ACTIVITY_TYPES, "voiceActivity type")
        offset = value.get("audio_offset_s")
        return VoiceActivitySignal(str(value["type"]), None if offset is None else float(offset))
    if kind == "vad_signal":
        _check(str(value), VAD_SIGNAL_TYPES, "vadSignalType")
        return VadSignal(str(value))
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
        if reason is not None:
            _check(reason, TURN_COMPLETE_REASONS, "turnCompleteReason")
        interaction = value.get("interactionStatus")
        if interaction is not None:
            _check(interaction, INTERACTION_STATUSES, "interactionStatus")
        return EndTurn(reason, value.get("waitingForInput"), interaction)
    raise ScenarioError(f"unknown step {kind!r}")


def _check(value: str, allowed: frozenset[str], what: str) -> None:
    if value not in allowed:
        raise ScenarioError(f"unknown {what} {value}")


# The server's enums (google-genai 3.4.0 types.TurnCompleteReason etc., the API's spelling).
TURN_COMPLETE_REASONS = frozenset(
    {
        "TURN_COMPLETE_REASON_UNSPECIFIED",
        "MALFORMED_FUNCTION_CALL",
        "RESPONSE_REJECTED",
        "NEED_MORE_INPUT",
        "PROHIBITED_INPUT_CONTENT",
        "IMAGE_PROHIBITED_INPUT_CONTENT",
        "INPUT_TEXT_CONTAIN_PROMINENT_PERSON_PROHIBITED",
        "INPUT_IMAGE_CELEBRITY",
        "INPUT_IMAGE_PHOTO_REALISTIC_CHILD_PROHIBITED",
        "INPUT_TEXT_NCII_PROHIBITED",
        "INPUT_OTHER",
        "INPUT_IP_PROHIBITED",
        "BLOCKLIST",
        "UNSAFE_PROMPT_FOR_IMAGE_GENERATION",
        "GENERATED_IMAGE_SAFETY",
        "GENERATED_CONTENT_SAFETY",
        "GENERATED_AUDIO_SAFETY",
        "GENERATED_VIDEO_SAFETY",
        "GENERATED_CONTENT_PROHIBITED",
        "GENERATED_CONTENT_BLOCKLIST",
        "GENERATED_IMAGE_PROHIBITED",
        "GENERATED_IMAGE_CELEBRITY",
        "GENERATED_IMAGE_PROMINENT_PEOPLE_DETECTED_BY_REWRITER",
        "GENERATED_IMAGE_IDENTIFIABLE_PEOPLE",
        "GENERATED_IMAGE_MINORS",
        "OUTPUT_IMAGE_IP_PROHIBITED",
        "GENERATED_OTHER",
        "MAX_REGENERATION_REACHED",
    }
)
INTERACTION_STATUSES = frozenset(
    {"INTERACTION_STATUS_UNSPECIFIED", "IN_PROGRESS", "REQUIRES_ACTION", "IDLE"}
)
OUTCOMES = frozenset(
    {"OUTCOME_UNSPECIFIED", "OUTCOME_OK", "OUTCOME_FAILED", "OUTCOME_DEADLINE_EXCEEDED"}
)
URL_STATUSES = frozenset(
    {
        "URL_RETRIEVAL_STATUS_UNSPECIFIED",
        "URL_RETRIEVAL_STATUS_SUCCESS",
        "URL_RETRIEVAL_STATUS_ERROR",
        "URL_RETRIEVAL_STATUS_PAYWALL",
        "URL_RETRIEVAL_STATUS_UNSAFE",
    }
)
VOICE_ACTIVITY_TYPES = frozenset({"TYPE_UNSPECIFIED", "ACTIVITY_START", "ACTIVITY_END"})
VAD_SIGNAL_TYPES = frozenset(
    {"VAD_SIGNAL_TYPE_UNSPECIFIED", "VAD_SIGNAL_TYPE_SOS", "VAD_SIGNAL_TYPE_EOS"}
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
                match = {match: True} if match in ("audio", "video") else {"text": match}
            pattern = match.get("text")
            turns.append(
                ScenarioTurn(
                    text=re.compile(pattern, re.IGNORECASE) if pattern is not None else None,
                    audio=bool(match.get("audio", False)),
                    transcript=raw.get("transcript"),
                    steps=tuple(_parse_step(s) for s in raw.get("steps", [])),
                    video=bool(match.get("video", False)),
                )
            )
        return cls(turns)

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        """Read a scenario JSON file."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def said_texts(self) -> list[str]:
        """The text of every ``say`` step, in order (what replies will speak)."""
        return [step.text for turn in self.turns for step in turn.steps if isinstance(step, Say)]

    def peek(self) -> ScenarioTurn | None:
        """The next unconsumed turn."""
        return self.turns[self.cursor] if self.cursor < len(self.turns) else None

    def take(
        self, *, text: str | None, is_audio: bool, is_video: bool = False
    ) -> ScenarioTurn | None:
        """Consume and return the next turn if it matches this input."""
        turn = self.peek()
        if turn is not None and turn.matches(text=text, is_audio=is_audio, is_video=is_video):
            self.cursor += 1
            return turn
        return None
