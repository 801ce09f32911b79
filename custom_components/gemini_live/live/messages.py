"""Typed builders for Live client messages and a parser for Live server messages.

Sans-I/O: nothing here touches a socket. Client messages are plain ``dict`` trees in the wire's
camelCase shape (``encode`` turns one into the text frame); server frames are parsed into a flat
list of typed events, in the order the fields carry meaning (model parts, transcriptions,
interruption, generation/turn completion, usage).
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
import functools
import itertools
import logging
from typing import Any, Final

import orjson

_LOGGER = logging.getLogger(__name__)

type JsonObject = dict[str, Any]

INPUT_AUDIO_RATE: Final = 16000
OUTPUT_AUDIO_RATE: Final = 24000


class ProtocolError(Exception):
    """A server frame that cannot be understood (not JSON, wrong shape)."""


# --------------------------------------------------------------------------------------------
# Enums (wire values)
# --------------------------------------------------------------------------------------------


class Modality(StrEnum):
    """Response modality."""

    AUDIO = "AUDIO"
    TEXT = "TEXT"


class StartSensitivity(StrEnum):
    """Automatic VAD start-of-speech sensitivity."""

    HIGH = "START_SENSITIVITY_HIGH"
    LOW = "START_SENSITIVITY_LOW"


class EndSensitivity(StrEnum):
    """Automatic VAD end-of-speech sensitivity."""

    HIGH = "END_SENSITIVITY_HIGH"
    LOW = "END_SENSITIVITY_LOW"


class ActivityHandling(StrEnum):
    """What user activity does to an ongoing model reply."""

    INTERRUPTS = "START_OF_ACTIVITY_INTERRUPTS"
    NO_INTERRUPTION = "NO_INTERRUPTION"


class TurnCoverage(StrEnum):
    """Which input a user turn includes."""

    ONLY_ACTIVITY = "TURN_INCLUDES_ONLY_ACTIVITY"
    ALL_INPUT = "TURN_INCLUDES_ALL_INPUT"
    AUDIO_ACTIVITY_AND_ALL_VIDEO = "TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO"


class Behavior(StrEnum):
    """Function call behaviour."""

    BLOCKING = "BLOCKING"
    NON_BLOCKING = "NON_BLOCKING"


class Scheduling(StrEnum):
    """How the model uses a NON_BLOCKING function response."""

    SILENT = "SILENT"
    WHEN_IDLE = "WHEN_IDLE"
    INTERRUPT = "INTERRUPT"


class MediaResolution(StrEnum):
    """Resolution the model samples video/image input at."""

    LOW = "MEDIA_RESOLUTION_LOW"
    MEDIUM = "MEDIA_RESOLUTION_MEDIUM"
    HIGH = "MEDIA_RESOLUTION_HIGH"


class ThinkingLevel(StrEnum):
    """Thinking level (gemini-3.x models)."""

    MINIMAL = "MINIMAL"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    XHIGH = "XHIGH"


VOICES: Final = (
    "Zephyr",
    "Puck",
    "Charon",
    "Kore",
    "Fenrir",
    "Leda",
    "Orus",
    "Aoede",
    "Callirrhoe",
    "Autonoe",
    "Enceladus",
    "Iapetus",
    "Umbriel",
    "Algieba",
    "Despina",
    "Erinome",
    "Algenib",
    "Rasalgethi",
    "Laomedeia",
    "Achernar",
    "Alnilam",
    "Schedar",
    "Gacrux",
    "Pulcherrima",
    "Achird",
    "Zubenelgenubi",
    "Vindemiatrix",
    "Sadachbia",
    "Sadaltager",
    "Sulafat",
)
DEFAULT_VOICE: Final = "Puck"


# --------------------------------------------------------------------------------------------
# Setup
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FunctionDeclaration:
    """One function the model may call (``parameters`` is Gemini's OpenAPI subset)."""

    name: str
    description: str = ""
    parameters: JsonObject | None = None
    behavior: Behavior | None = None

    def to_wire(self) -> JsonObject:
        """Return the wire shape."""
        out: JsonObject = {"name": self.name}
        if self.description:
            out["description"] = self.description
        if self.parameters is not None:
            out["parameters"] = self.parameters
        if self.behavior is not None:
            out["behavior"] = self.behavior.value
        return out


@dataclass(frozen=True, slots=True)
class VadConfig:
    """realtimeInputConfig.automaticActivityDetection; ``disabled`` = manual activity signals."""

    disabled: bool = False
    start_sensitivity: StartSensitivity | None = None
    end_sensitivity: EndSensitivity | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None

    def to_wire(self) -> JsonObject:
        """Return the wire shape."""
        out: JsonObject = {}
        if self.disabled:
            out["disabled"] = True
        if self.start_sensitivity is not None:
            out["startOfSpeechSensitivity"] = self.start_sensitivity.value
        if self.end_sensitivity is not None:
            out["endOfSpeechSensitivity"] = self.end_sensitivity.value
        if self.prefix_padding_ms is not None:
            out["prefixPaddingMs"] = self.prefix_padding_ms
        if self.silence_duration_ms is not None:
            out["silenceDurationMs"] = self.silence_duration_ms
        return out


@dataclass(frozen=True, slots=True)
class ThinkingConfig:
    """Thinking: a token budget (2.5 models) or a level (3.1), optionally with thoughts."""

    budget: int | None = None
    level: ThinkingLevel | None = None
    include_thoughts: bool | None = None

    def to_wire(self) -> JsonObject:
        """Return the wire shape."""
        out: JsonObject = {}
        if self.budget is not None:
            out["thinkingBudget"] = self.budget
        if self.level is not None:
            out["thinkingLevel"] = self.level.value
        if self.include_thoughts is not None:
            out["includeThoughts"] = self.include_thoughts
        return out


@dataclass(frozen=True, slots=True)
class CompressionConfig:
    """Context window compression with a sliding window."""

    trigger_tokens: int | None = None
    target_tokens: int | None = None

    def to_wire(self) -> JsonObject:
        """Return the wire shape."""
        out: JsonObject = {"slidingWindow": {}}
        if self.trigger_tokens is not None:
            out["triggerTokens"] = self.trigger_tokens
        if self.target_tokens is not None:
            out["slidingWindow"]["targetTokens"] = self.target_tokens
        return out


@dataclass(frozen=True, slots=True)
class SetupConfig:
    """Everything the ``setup`` message can carry. ``None`` means "not sent"."""

    model: str
    response_modality: Modality = Modality.AUDIO
    temperature: float | None = None
    media_resolution: MediaResolution | None = None
    voice: str | None = None
    language_code: str | None = None
    thinking: ThinkingConfig | None = None
    affective_dialog: bool | None = None
    proactive_audio: bool | None = None
    proactive_video: bool | None = None
    system_instruction: str | None = None
    functions: Sequence[FunctionDeclaration] = ()
    google_search: bool = False
    vad: VadConfig | None = None
    activity_handling: ActivityHandling | None = None
    turn_coverage: TurnCoverage | None = None
    input_transcription: bool = False
    transcription_vocabulary: Sequence[str] = ()  # inputAudioTranscription.customVocabulary
    smart_transcription: bool = False  # inputAudioTranscription.mode SMART (disfluencies removed)
    output_transcription: bool = False
    compression: CompressionConfig | None = None
    session_resumption: bool = True
    resumption_handle: str | None = None
    max_output_tokens: int | None = None
    extra_generation_config: Mapping[str, Any] = field(default_factory=dict)


def _model_path(model: str) -> str:
    return model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"


def build_setup(cfg: SetupConfig) -> JsonObject:
    """Build the ``setup`` client message for ``cfg`` (no capability checks: see models.py)."""
    gen: JsonObject = {"responseModalities": [cfg.response_modality.value]}
    if cfg.temperature is not None:
        gen["temperature"] = cfg.temperature
    if cfg.max_output_tokens is not None:
        gen["maxOutputTokens"] = cfg.max_output_tokens
    if cfg.media_resolution is not None:
        gen["mediaResolution"] = cfg.media_resolution.value
    if cfg.voice is not None or cfg.language_code is not None:
        speech: JsonObject = {}
        if cfg.voice is not None:
            speech["voiceConfig"] = {"prebuiltVoiceConfig": {"voiceName": cfg.voice}}
        if cfg.language_code is not None:
            speech["languageCode"] = cfg.language_code
        gen["speechConfig"] = speech
    if cfg.thinking is not None:
        gen["thinkingConfig"] = cfg.thinking.to_wire()
    if cfg.affective_dialog is not None:
        gen["enableAffectiveDialog"] = cfg.affective_dialog
    gen.update(cfg.extra_generation_config)

    setup: JsonObject = {"model": _model_path(cfg.model), "generationConfig": gen}
    if cfg.system_instruction:
        setup["systemInstruction"] = {"role": "user", "parts": [{"text": cfg.system_instruction}]}
    tools: list[JsonObject] = []
    if cfg.functions:
        tools.append({"functionDeclarations": [f.to_wire() for f in cfg.functions]})
    if cfg.google_search:
        tools.append({"googleSearch": {}})
    if tools:
        setup["tools"] = tools
    ric: JsonObject = {}
    if cfg.vad is not None:
        ric["automaticActivityDetection"] = cfg.vad.to_wire()
    if cfg.activity_handling is not None:
        ric["activityHandling"] = cfg.activity_handling.value
    if cfg.turn_coverage is not None:
        ric["turnCoverage"] = cfg.turn_coverage.value
    if ric:
        setup["realtimeInputConfig"] = ric
    if cfg.input_transcription:
        transcription: JsonObject = {}
        if cfg.transcription_vocabulary:
            transcription["customVocabulary"] = list(cfg.transcription_vocabulary)
        if cfg.smart_transcription:
            transcription["mode"] = "SMART"
        setup["inputAudioTranscription"] = transcription
    if cfg.output_transcription:
        setup["outputAudioTranscription"] = {}
    if cfg.compression is not None:
        setup["contextWindowCompression"] = cfg.compression.to_wire()
    if cfg.session_resumption:
        setup["sessionResumption"] = (
            {"handle": cfg.resumption_handle} if cfg.resumption_handle else {}
        )
    if cfg.proactive_audio is not None or cfg.proactive_video is not None:
        proactivity: JsonObject = {}
        if cfg.proactive_audio is not None:
            proactivity["proactiveAudio"] = cfg.proactive_audio
        if cfg.proactive_video is not None:
            proactivity["proactiveVideo"] = cfg.proactive_video
        setup["proactivity"] = proactivity
    return {"setup": setup}


# --------------------------------------------------------------------------------------------
# Other client messages
# --------------------------------------------------------------------------------------------


def encode(message: Mapping[str, Any]) -> bytes:
    """Serialize a client message to the text frame the server expects (UTF-8 JSON)."""
    return orjson.dumps(message)


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def client_content(
    turns: Sequence[tuple[str, str]] | str, *, turn_complete: bool = True
) -> JsonObject:
    """Build ``clientContent``: a text user turn or (role, text) history turns."""
    items = [("user", turns)] if isinstance(turns, str) else list(turns)
    return {
        "clientContent": {
            "turns": [{"role": role, "parts": [{"text": text}]} for role, text in items],
            "turnComplete": turn_complete,
        }
    }


_AUDIO_FRAME_HEAD: Final = b'{"realtimeInput":{"audio":{"data":"'


@functools.cache
def _audio_frame_tail(rate: int) -> bytes:
    return f'","mimeType":"audio/pcm;rate={rate}"}}}}}}'.encode()


def realtime_audio_frame(pcm: bytes, rate: int = INPUT_AUDIO_RATE) -> bytes:
    """The encoded ``realtimeInput.audio`` frame for 16-bit little-endian mono PCM.

    Built directly rather than through a dict and ``encode``: it is the one message sent 50
    times a second per microphone, and base64 needs no JSON escaping.
    """
    return _AUDIO_FRAME_HEAD + binascii.b2a_base64(pcm, newline=False) + _audio_frame_tail(rate)


def realtime_video(image: bytes, mime_type: str = "image/jpeg") -> JsonObject:
    """Build ``realtimeInput.video`` for one encoded frame."""
    return {"realtimeInput": {"video": {"data": _b64(image), "mimeType": mime_type}}}


def realtime_text(text: str) -> JsonObject:
    """Build ``realtimeInput.text``."""
    return {"realtimeInput": {"text": text}}


def activity_start() -> JsonObject:
    """Manual activity start (automatic VAD disabled)."""
    return {"realtimeInput": {"activityStart": {}}}


def activity_end() -> JsonObject:
    """Manual activity end (automatic VAD disabled)."""
    return {"realtimeInput": {"activityEnd": {}}}


def audio_stream_end() -> JsonObject:
    """The microphone stream paused (automatic VAD only): flush pending audio."""
    return {"realtimeInput": {"audioStreamEnd": True}}


@dataclass(frozen=True, slots=True)
class FunctionResult:
    """One function response. ``scheduling`` only for NON_BLOCKING calls."""

    id: str
    name: str
    response: JsonObject
    scheduling: Scheduling | None = None

    def to_wire(self) -> JsonObject:
        """Return the wire shape (scheduling sent as the proto field and inside response).

        A call the server sent without an id was given a local one: its response goes without.
        """
        out: JsonObject = {"name": self.name, "response": dict(self.response)}
        if not self.id.startswith(LOCAL_CALL_ID):
            out = {"id": self.id, **out}
        if self.scheduling is not None:
            out["scheduling"] = self.scheduling.value
            out["response"]["scheduling"] = self.scheduling.value
        return out


def tool_response(results: Sequence[FunctionResult]) -> JsonObject:
    """Build ``toolResponse``."""
    return {"toolResponse": {"functionResponses": [r.to_wire() for r in results]}}


# --------------------------------------------------------------------------------------------
# Server events
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetupComplete:
    """The server accepted the setup."""

    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class AudioOut:
    """A chunk of model audio (PCM16LE mono)."""

    data: bytes
    rate: int = OUTPUT_AUDIO_RATE


@dataclass(frozen=True, slots=True)
class TextOut:
    """Model text (TEXT modality), or a thought summary when ``thought``."""

    text: str
    thought: bool = False


@dataclass(frozen=True, slots=True)
class InputTranscription:
    """Transcription of the user's audio."""

    text: str
    finished: bool = False


@dataclass(frozen=True, slots=True)
class OutputTranscription:
    """Transcription of the model's audio."""

    text: str
    finished: bool = False


@dataclass(frozen=True, slots=True)
class Interrupted:
    """User activity interrupted the model; stop playback now."""


@dataclass(frozen=True, slots=True)
class GenerationComplete:
    """The model finished generating (playback may still be running)."""


class InteractionStatus(StrEnum):
    """Whether the model still works on the interaction (background reasoning models)."""

    IN_PROGRESS = "IN_PROGRESS"  # it will speak again on its own (a tool is still running)
    IDLE = "IDLE"  # the whole task is done


NEED_MORE_INPUT: Final = "NEED_MORE_INPUT"
NORMAL_TURN_ENDS: Final = frozenset({"TURN_COMPLETE_REASON_UNSPECIFIED", NEED_MORE_INPUT})


@dataclass(frozen=True, slots=True)
class TurnComplete:
    """The model's turn is over."""

    reason: str | None = None
    waiting_for_input: bool = False
    interaction_status: InteractionStatus | None = None

    @property
    def abnormal(self) -> bool:
        """Whether the turn ended for another reason than finishing (safety, bad call...)."""
        return self.reason is not None and self.reason not in NORMAL_TURN_ENDS


@dataclass(frozen=True, slots=True)
class Source:
    """A web page the model's answer is grounded on (Google Search, URL context)."""

    uri: str
    title: str


@dataclass(frozen=True, slots=True)
class Grounding:
    """Grounding metadata (Google Search) or URL context: where the answer comes from."""

    sources: tuple[Source, ...]
    queries: tuple[str, ...] = ()
    metadata: JsonObject = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """One function call requested by the model.

    ``will_continue``: the call is streamed and more of its arguments follow (``partial``
    holds the ``partialArgs`` pieces); it must not run before the last piece.
    """

    id: str
    name: str
    args: JsonObject
    will_continue: bool = False
    partial: tuple[JsonObject, ...] = ()


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model calls one or more functions."""

    calls: tuple[FunctionCall, ...]


@dataclass(frozen=True, slots=True)
class ToolCallCancellation:
    """Earlier calls the model no longer wants (e.g. after an interruption)."""

    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GoAway:
    """The server will close this connection after ``time_left`` seconds."""

    time_left: float | None


@dataclass(frozen=True, slots=True)
class ResumptionUpdate:
    """A new session resumption handle."""

    new_handle: str | None
    resumable: bool
    last_consumed_index: int | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage of one turn (per turn, not cumulative).

    ``prompt_tokens`` is the whole context the turn read (it grows turn after turn), the
    response tokens are what the turn generated; the ``*_audio`` / ``*_text`` counts split them
    by modality (audio and text tokens are priced differently).
    """

    prompt_tokens: int = 0
    response_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    thoughts_tokens: int = 0
    tool_use_prompt_tokens: int = 0
    prompt_text: int = 0
    prompt_audio: int = 0
    response_text: int = 0
    response_audio: int = 0


@dataclass(frozen=True, slots=True)
class InterimTranscription:
    """The whole hypothesis so far of what the user is saying (words may still change)."""

    text: str


@dataclass(frozen=True, slots=True)
class VoiceActivity:
    """Server VAD signal (``ACTIVITY_START`` / ``ACTIVITY_END``)."""

    type: str


type ServerEvent = (
    SetupComplete
    | AudioOut
    | TextOut
    | InputTranscription
    | OutputTranscription
    | Interrupted
    | GenerationComplete
    | TurnComplete
    | Grounding
    | InterimTranscription
    | ToolCall
    | ToolCallCancellation
    | GoAway
    | ResumptionUpdate
    | Usage
    | VoiceActivity
)

_warned_unknown: set[str] = set()


def _unknown(path: str) -> None:
    if path not in _warned_unknown:
        _warned_unknown.add(path)
        _LOGGER.debug("Ignoring unknown Live server field %s", path)


def decode_b64(data: str) -> bytes:
    """Decode standard or URL-safe base64, with or without padding."""
    if "-" in data or "_" in data:
        data = data.replace("-", "+").replace("_", "/")
    if pad := len(data) % 4:
        data += "=" * (4 - pad)
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error as err:
        raise ProtocolError(f"invalid base64 payload: {err}") from err


def _int(value: Any) -> int:
    """int64 fields arrive as JSON strings."""
    try:
        return int(value)
    except (TypeError, ValueError) as err:
        raise ProtocolError(f"expected an integer, got {value!r}") from err


def parse_duration(value: Any) -> float | None:
    """Parse a proto Duration (``"50s"``, ``"0.5s"``) or a number of seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.endswith("s"):
        try:
            return float(value[:-1])
        except ValueError:
            pass
    raise ProtocolError(f"invalid duration {value!r}")


def _rate_of(mime_type: str) -> int:
    for param in mime_type.split(";")[1:]:
        key, _, val = param.strip().partition("=")
        if key == "rate" and val.isdigit():
            return int(val)
    return OUTPUT_AUDIO_RATE  # Vertex omits the rate: 24 kHz is implied


# Parts we knowingly ignore: the model's own code for calling our functions (sent before every
# toolCall) and its result; the call itself comes as a toolCall. Nothing to show or run.
_IGNORED_PARTS: Final = frozenset(
    {"thought", "thoughtSignature", "executableCode", "codeExecutionResult"}
)


def _parse_part(part: JsonObject, out: list[ServerEvent]) -> None:
    if (inline := part.get("inlineData")) is not None:
        mime = inline.get("mimeType", "")
        if mime.startswith("audio/"):
            out.append(AudioOut(decode_b64(inline.get("data", "")), _rate_of(mime)))
        else:
            _unknown(f"inlineData[{mime}]")
    elif (text := part.get("text")) is not None:
        out.append(TextOut(text, bool(part.get("thought", False))))
    else:
        for key in part:
            if key not in _IGNORED_PARTS:
                _unknown(f"modelTurn.parts.{key}")


_CONTENT_KEYS: Final = frozenset(
    {
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
    }
)


def _grounding(metadata: JsonObject) -> Grounding:
    sources = []
    for chunk in metadata.get("groundingChunks") or ():
        web = chunk.get("web") or chunk.get("retrievedContext") or {}
        if uri := web.get("uri"):
            sources.append(Source(str(uri), str(web.get("title") or uri)))
    queries = tuple(str(q) for q in metadata.get("webSearchQueries") or ())
    return Grounding(tuple(sources), queries, metadata)


def _url_context(metadata: JsonObject) -> Grounding:
    sources = tuple(
        Source(str(url["retrievedUrl"]), str(url["retrievedUrl"]))
        for url in metadata.get("urlMetadata") or ()
        if url.get("retrievedUrl")
        and url.get("urlRetrievalStatus", "URL_RETRIEVAL_STATUS_SUCCESS")
        == "URL_RETRIEVAL_STATUS_SUCCESS"
    )
    return Grounding(sources, (), metadata)


def _interaction_status(value: Any) -> InteractionStatus | None:
    try:
        return InteractionStatus(value) if value else None
    except ValueError:
        return None  # INTERACTION_STATUS_UNSPECIFIED or a newer value


def _parse_content(content: JsonObject, out: list[ServerEvent]) -> None:
    if (turn := content.get("modelTurn")) is not None:
        for part in turn.get("parts") or ():
            _parse_part(part, out)
    if (tr := content.get("interimInputTranscription")) is not None and tr.get("text"):
        out.append(InterimTranscription(tr["text"]))
    if (tr := content.get("inputTranscription")) is not None and (
        tr.get("text") or tr.get("finished")
    ):
        out.append(InputTranscription(tr.get("text", ""), bool(tr.get("finished", False))))
    if (tr := content.get("outputTranscription")) is not None and (
        tr.get("text") or tr.get("finished")
    ):
        out.append(OutputTranscription(tr.get("text", ""), bool(tr.get("finished", False))))
    if (grounding := content.get("groundingMetadata")) is not None:
        out.append(_grounding(grounding))
    if (url_context := content.get("urlContextMetadata")) is not None:
        out.append(_url_context(url_context))
    if content.get("interrupted"):
        out.append(Interrupted())
    if content.get("generationComplete"):
        out.append(GenerationComplete())
    if content.get("turnComplete"):
        out.append(
            TurnComplete(
                content.get("turnCompleteReason"),
                bool(content.get("waitingForInput")),
                _interaction_status(content.get("interactionStatus")),
            )
        )
    for key in content.keys() - _CONTENT_KEYS:
        _unknown(f"serverContent.{key}")


def _by_modality(details: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in details or ():
        modality = str(item.get("modality", ""))
        out[modality] = out.get(modality, 0) + _int(item.get("tokenCount", 0))
    return out


def _parse_usage(usage: JsonObject) -> Usage:
    prompt = _by_modality(usage.get("promptTokensDetails"))
    response = _by_modality(usage.get("responseTokensDetails"))
    return Usage(
        prompt_tokens=_int(usage.get("promptTokenCount", 0)),
        response_tokens=_int(usage.get("responseTokenCount", 0)),
        total_tokens=_int(usage.get("totalTokenCount", 0)),
        cached_tokens=_int(usage.get("cachedContentTokenCount", 0)),
        thoughts_tokens=_int(usage.get("thoughtsTokenCount", 0)),
        tool_use_prompt_tokens=_int(usage.get("toolUsePromptTokenCount", 0)),
        prompt_text=prompt.get("TEXT", 0),
        prompt_audio=prompt.get("AUDIO", 0),
        response_text=response.get("TEXT", 0),
        response_audio=response.get("AUDIO", 0),
    )


def _function_call(call: JsonObject) -> FunctionCall:
    """A function call; one without an id (none is documented) gets a local one."""
    call_id = call.get("id")
    return FunctionCall(
        str(call_id) if call_id else f"{LOCAL_CALL_ID}{next(_local_ids)}",
        str(call["name"]),
        dict(call.get("args") or {}),
        bool(call.get("willContinue", False)),
        tuple(call.get("partialArgs") or ()),
    )


LOCAL_CALL_ID: Final = "local-call-"
_local_ids = itertools.count(1)


def parse_server_message(frame: bytes | str) -> list[ServerEvent]:
    """Parse one server frame into events. Raises ProtocolError on a malformed frame."""
    try:
        msg = orjson.loads(frame)
    except orjson.JSONDecodeError as err:
        raise ProtocolError(f"server frame is not JSON: {err}") from err
    if not isinstance(msg, dict):
        raise ProtocolError("server frame is not a JSON object")
    out: list[ServerEvent] = []
    try:
        _parse_into(msg, out)
    except (AttributeError, TypeError, KeyError) as err:
        raise ProtocolError(f"unexpected server message shape: {err}") from err
    return out


def _parse_into(msg: JsonObject, out: list[ServerEvent]) -> None:
    for key, value in msg.items():
        match key:
            case "serverContent":
                _parse_content(value, out)
            case "setupComplete":
                out.append(SetupComplete((value or {}).get("sessionId")))
            case "toolCall":
                out.append(
                    ToolCall(tuple(_function_call(c) for c in value.get("functionCalls") or ()))
                )
            case "toolCallCancellation":
                out.append(ToolCallCancellation(tuple(str(i) for i in value.get("ids") or ())))
            case "goAway":
                out.append(GoAway(parse_duration(value.get("timeLeft"))))
            case "sessionResumptionUpdate":
                index = value.get("lastConsumedClientMessageIndex")
                out.append(
                    ResumptionUpdate(
                        value.get("newHandle") or None,
                        bool(value.get("resumable", False)),
                        None if index is None else _int(index),
                    )
                )
            case "usageMetadata":
                pass  # appended last, after the turn's own events
            case "voiceActivity":
                out.append(VoiceActivity(str(value.get("voiceActivityType") or value.get("type"))))
            case _:
                _unknown(key)
    if (usage := msg.get("usageMetadata")) is not None:
        out.append(_parse_usage(usage))
