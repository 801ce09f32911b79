"""Server-side model table and per-model setup validation (the real server's 1007/1008 rules).

Written from the published model facts (docs as of 2026-09, issue reports up to 2026-11),
independently of any client code. The table is data: to follow Google,

* retire a model: add one line to ``RETIRED`` (name -> date). It keeps its row below, so a
  retirement is undone by deleting that one line; a retired name closes 1008 with the server's
  "not found" text. ``EmulatorConfig.retired_models`` overrides the set for one emulator (to
  test a retirement before it is known which previews go);
* add a model: add a ``ModelSpec`` row (copy the closest one and change what differs).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from .errors import INVALID_ARGUMENT, ProtocolError

VOICES: tuple[str, ...] = (
    "Zephyr", "Puck", "Charon", "Kore", "Fenrir", "Leda", "Orus", "Aoede", "Callirrhoe", "Autonoe",
    "Enceladus", "Iapetus", "Umbriel", "Algieba", "Despina", "Erinome", "Algenib", "Rasalgethi",
    "Laomedeia", "Achernar", "Alnilam", "Schedar", "Gacrux", "Pulcherrima", "Achird",
    "Zubenelgenubi", "Vindemiatrix", "Sadachbia", "Sadaltager", "Sulafat",
)  # fmt: skip
DEFAULT_VOICE = "Puck"

API_VERSIONS = ("v1alpha", "v1beta", "v1")


@dataclass(frozen=True)
class ModelSpec:
    """What one Live model accepts and how it behaves.

    Attributes:
        name: model id without the ``models/`` prefix.
        status: "stable", "preview" or "legacy" (documentation only).
        modalities: accepted responseModalities values.
        thinking: "none" (no thinkingConfig at all), "level" (thinkingLevel) or "budget"
            (thinkingBudget and includeThoughts).
        thinking_levels: the thinkingLevel values accepted when ``thinking`` is "level".
        blocking: whether BLOCKING function declarations are accepted.
        non_blocking: whether NON_BLOCKING function declarations are accepted.
        default_behavior: behaviour of declarations that set none.
        affective: "no", or "v1alpha" (only on the v1alpha API version).
        proactive: "no", "v1alpha" (only on v1alpha) or "always" (on; false is an error).
        visible_thoughts: whether includeThoughts produces thought parts.
        background_reasoning: the model keeps working on a request after its turn: it calls
            tools asynchronously, speaks a filler while they run and answers when the results
            are in (gemini-3.8-live-extended-thinking).
        interaction_status: every turnComplete carries ``interactionStatus`` (IN_PROGRESS while
            calls of the interaction are outstanding, else IDLE).
        voice_activity: the server sends ``voiceActivity`` (type, audioOffset) when its
            automatic VAD detects the start/end of speech.
        interim_transcription: with inputAudioTranscription, ``interimInputTranscription``
            hypotheses are sent while the user speaks.
        session_id: setupComplete carries a ``sessionId``.
        code_before_tool_call: a modelTurn ``executableCode`` part precedes every toolCall.

    """

    name: str
    status: Literal["stable", "preview", "legacy"]
    modalities: frozenset[str]
    thinking: Literal["none", "level", "budget"]
    non_blocking: bool
    default_behavior: Literal["BLOCKING", "NON_BLOCKING"]
    affective: Literal["no", "v1alpha"]
    proactive: Literal["no", "v1alpha", "always"]
    visible_thoughts: bool
    thinking_levels: frozenset[str] = frozenset()
    blocking: bool = True
    background_reasoning: bool = False
    interaction_status: bool = False
    voice_activity: bool = False
    interim_transcription: bool = False
    session_id: bool = True
    code_before_tool_call: bool = True


_AUDIO = frozenset({"AUDIO"})
_AUDIO_TEXT = frozenset({"AUDIO", "TEXT"})

_GEMINI_38 = ModelSpec(
    name="gemini-3.8-live",
    status="stable",
    modalities=_AUDIO,
    thinking="none",
    non_blocking=True,
    default_behavior="NON_BLOCKING",
    affective="no",
    proactive="always",
    visible_thoughts=False,
    interim_transcription=True,
)
_NATIVE_AUDIO_25 = ModelSpec(
    name="gemini-2.5-flash-native-audio-preview-12-2025",
    status="preview",
    modalities=_AUDIO_TEXT,
    thinking="budget",
    non_blocking=True,
    default_behavior="BLOCKING",
    affective="v1alpha",
    proactive="v1alpha",
    visible_thoughts=True,
)

MODEL_TABLE: tuple[ModelSpec, ...] = (
    _GEMINI_38,
    replace(
        _GEMINI_38,
        name="gemini-3.8-live-extended-thinking",
        thinking="level",
        thinking_levels=frozenset({"LOW", "MEDIUM", "HIGH"}),
        blocking=False,
        background_reasoning=True,
        interaction_status=True,
    ),
    ModelSpec(
        name="gemini-3.1-flash-live-preview",
        status="legacy",
        modalities=_AUDIO,
        thinking="level",
        thinking_levels=frozenset({"MINIMAL", "LOW", "MEDIUM", "HIGH"}),
        non_blocking=False,
        default_behavior="BLOCKING",
        affective="no",
        proactive="no",
        visible_thoughts=False,
        voice_activity=True,
    ),
    _NATIVE_AUDIO_25,
    replace(_NATIVE_AUDIO_25, name="gemini-2.5-flash-native-audio-preview-09-2025"),
    replace(_NATIVE_AUDIO_25, name="gemini-2.5-flash-native-audio-latest"),
    # The half-cascade 2.5 model of the recorded transcripts, still accepted in 2026-07.
    ModelSpec(
        name="gemini-live-2.5-flash-preview",
        status="preview",
        modalities=_AUDIO_TEXT,
        thinking="none",
        non_blocking=True,
        default_behavior="BLOCKING",
        affective="no",
        proactive="no",
        visible_thoughts=False,
        session_id=False,
    ),
)

# name -> when it stopped being served. One line per retirement (see the module docstring).
RETIRED: dict[str, str] = {
    "gemini-2.0-flash-live-001": "2025-12-09",
}

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in MODEL_TABLE}
RETIRED_MODELS: frozenset[str] = frozenset(RETIRED)


def model_not_found(model: str, api_version: str) -> ProtocolError:
    """Return the 1008 close the server sends for an unknown or retired model."""
    return ProtocolError(
        1008,
        f"models/{model} is not found for API version {api_version}, "
        "or is not supported for bidiGenerateContent",
    )


def resolve_model(
    raw: str | None, api_version: str, retired: frozenset[str] | None = None
) -> ModelSpec:
    """Return the spec for the setup's ``model`` field, or raise the server's close error.

    ``retired`` replaces ``RETIRED`` (None = the table's retirements).
    """
    if not raw:
        raise ProtocolError(1007, INVALID_ARGUMENT, "setup.model is missing")
    name = raw.removeprefix("models/")
    spec = MODELS.get(name)
    if spec is None or name in (RETIRED_MODELS if retired is None else retired):
        raise model_not_found(name, api_version)
    return spec


def _reject(detail: str) -> ProtocolError:
    return ProtocolError(1007, INVALID_ARGUMENT, detail)


def function_declarations(setup: dict[str, Any]) -> list[dict[str, Any]]:
    """Return every function declaration of a normalized setup, in order."""
    out: list[dict[str, Any]] = []
    for tool in setup.get("tools", []):
        out.extend(tool.get("functionDeclarations", []))
    return out


def _validate_thinking(spec: ModelSpec, thinking: dict[str, Any]) -> None:
    if spec.thinking == "none":
        raise _reject(f"{spec.name} does not accept thinkingConfig")
    if spec.thinking == "level" and "thinkingBudget" in thinking:
        raise _reject(f"{spec.name} accepts thinkingLevel, not thinkingBudget")
    if spec.thinking == "budget" and "thinkingLevel" in thinking:
        raise _reject(f"{spec.name} accepts thinkingBudget, not thinkingLevel")
    level = thinking.get("thinkingLevel")
    if level not in (None, "THINKING_LEVEL_UNSPECIFIED") and level not in spec.thinking_levels:
        raise _reject(f"{spec.name} does not accept thinkingLevel {level}")
    budget = thinking.get("thinkingBudget")
    if budget is not None and not (budget == -1 or 0 <= budget <= 24576):
        raise _reject("thinkingBudget out of range")


def _validate_transcription(config: dict[str, Any], where: str) -> None:
    if config.get("mode") == "SMART" and (config.get("wordTimestamp") or config.get("diarization")):
        raise _reject(f"{where}: timestamps and diarization are incompatible with mode SMART")
    if any(not phrase.strip() for phrase in config.get("customVocabulary", [])):
        raise _reject(f"{where}: empty customVocabulary phrase")


def _validate_proactivity(spec: ModelSpec, proactivity: dict[str, Any], api_version: str) -> None:
    if spec.proactive == "no":
        raise _reject(f"{spec.name} does not support proactivity")
    if spec.proactive == "v1alpha" and api_version != "v1alpha":
        raise _reject("proactivity is only available on v1alpha")
    if spec.proactive == "always" and proactivity.get("proactiveAudio") is False:
        raise _reject(f"proactive audio cannot be disabled on {spec.name}")
    audio_on = spec.proactive == "always" or proactivity.get("proactiveAudio") is True
    if proactivity.get("proactiveVideo") and not audio_on:
        raise _reject("proactiveVideo requires proactiveAudio")


def validate_setup(spec: ModelSpec, setup: dict[str, Any], api_version: str) -> None:
    """Apply the model's rules to a normalized (camelCase) setup; raise the 1007 close if broken.

    The wire reason is the generic "Request contains an invalid argument." (what the server
    sends for most semantic errors); the rule that fired is kept as the error's ``detail``.
    """
    gen = setup.get("generationConfig", {})
    modalities = gen.get("responseModalities", [])
    if len(modalities) > 1:
        raise _reject("only one response modality is supported")
    for modality in modalities:
        if modality not in spec.modalities and modality != "MODALITY_UNSPECIFIED":
            raise _reject(f"{spec.name} does not support response modality {modality}")

    voice = gen.get("speechConfig", {}).get("voiceConfig", {}).get("prebuiltVoiceConfig", {})
    voice_name = voice.get("voiceName")
    if voice_name is not None and voice_name.lower() not in {v.lower() for v in VOICES}:
        raise _reject(f"unknown voice {voice_name}")

    if (thinking := gen.get("thinkingConfig")) is not None:
        _validate_thinking(spec, thinking)

    if gen.get("enableAffectiveDialog") is not None:
        if spec.affective == "no":
            raise _reject(f"{spec.name} does not support affective dialog")
        if api_version != "v1alpha":
            raise _reject("affective dialog is only available on v1alpha")

    if (proactivity := setup.get("proactivity")) is not None:
        _validate_proactivity(spec, proactivity, api_version)

    for key in ("inputAudioTranscription", "outputAudioTranscription"):
        if (transcription := setup.get(key)) is not None:
            _validate_transcription(transcription, key)

    for decl in function_declarations(setup):
        if not decl.get("name"):
            raise _reject("function declaration without a name")
        behavior = behavior_of(spec, decl)
        if behavior == "NON_BLOCKING" and not spec.non_blocking:
            raise _reject(f"{spec.name} supports synchronous (BLOCKING) function calls only")
        if behavior == "BLOCKING" and not spec.blocking:
            raise _reject(f"{spec.name} supports asynchronous (NON_BLOCKING) function calls only")

    cwc = setup.get("contextWindowCompression")
    if cwc is not None:
        trigger = cwc.get("triggerTokens")
        target = cwc.get("slidingWindow", {}).get("targetTokens")
        if trigger is not None and trigger < 0:
            raise _reject("triggerTokens must be positive")
        if target is not None and (target < 0 or (trigger is not None and target > trigger)):
            raise _reject("slidingWindow.targetTokens must not exceed triggerTokens")

    aad = setup.get("realtimeInputConfig", {}).get("automaticActivityDetection", {})
    for key in ("prefixPaddingMs", "silenceDurationMs"):
        if aad.get(key, 0) < 0:
            raise _reject(f"{key} must not be negative")


def behavior_of(spec: ModelSpec, decl: dict[str, Any]) -> str:
    """Return the effective BLOCKING/NON_BLOCKING behaviour of a declaration on this model."""
    behavior = decl.get("behavior")
    if behavior in ("BLOCKING", "NON_BLOCKING"):
        return str(behavior)
    return spec.default_behavior
