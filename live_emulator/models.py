"""Server-side model table and per-model setup validation (the real server's 1007/1008 rules).

Written from the published model facts (docs as of 2026-09), independently of any client code.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    """What one Live model accepts.

    Attributes:
        name: model id without the ``models/`` prefix.
        modalities: accepted responseModalities values.
        thinking: "none" (no thinkingConfig at all), "level" (thinkingLevel) or "budget"
            (thinkingBudget and includeThoughts).
        non_blocking: whether NON_BLOCKING function declarations are accepted.
        default_behavior: behaviour of declarations that set none.
        affective: "no", or "v1alpha" (only on the v1alpha API version).
        proactive: "no", "v1alpha" (only on v1alpha) or "always" (on; false is an error).
        visible_thoughts: whether includeThoughts produces thought parts.

    """

    name: str
    modalities: frozenset[str]
    thinking: Literal["none", "level", "budget"]
    non_blocking: bool
    default_behavior: Literal["BLOCKING", "NON_BLOCKING"]
    affective: Literal["no", "v1alpha"]
    proactive: Literal["no", "v1alpha", "always"]
    visible_thoughts: bool


_AUDIO = frozenset({"AUDIO"})
_AUDIO_TEXT = frozenset({"AUDIO", "TEXT"})


def _native_audio_25(name: str) -> ModelSpec:
    return ModelSpec(
        name=name,
        modalities=_AUDIO_TEXT,
        thinking="budget",
        non_blocking=True,
        default_behavior="BLOCKING",
        affective="v1alpha",
        proactive="v1alpha",
        visible_thoughts=True,
    )


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="gemini-3.8-live",
            modalities=_AUDIO,
            thinking="none",
            non_blocking=True,
            default_behavior="NON_BLOCKING",
            affective="no",
            proactive="always",
            visible_thoughts=False,
        ),
        ModelSpec(
            name="gemini-3.1-flash-live-preview",
            modalities=_AUDIO,
            thinking="level",
            non_blocking=False,
            default_behavior="BLOCKING",
            affective="no",
            proactive="no",
            visible_thoughts=False,
        ),
        _native_audio_25("gemini-2.5-flash-native-audio-preview-12-2025"),
        _native_audio_25("gemini-2.5-flash-native-audio-preview-09-2025"),
        _native_audio_25("gemini-2.5-flash-native-audio-latest"),
    )
}

RETIRED_MODELS = frozenset({"gemini-live-2.5-flash-preview", "gemini-2.0-flash-live-001"})


def model_not_found(model: str, api_version: str) -> ProtocolError:
    """Return the 1008 close the server sends for an unknown or retired model."""
    return ProtocolError(
        1008,
        f"models/{model} is not found for API version {api_version}, "
        "or is not supported for bidiGenerateContent",
    )


def resolve_model(raw: str | None, api_version: str) -> ModelSpec:
    """Return the spec for the setup's ``model`` field, or raise the server's close error."""
    if not raw:
        raise ProtocolError(1007, INVALID_ARGUMENT, "setup.model is missing")
    name = raw.removeprefix("models/")
    spec = MODELS.get(name)
    if spec is None:
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

    thinking = gen.get("thinkingConfig")
    if thinking is not None:
        if spec.thinking == "none":
            raise _reject(f"{spec.name} does not accept thinkingConfig")
        if spec.thinking == "level" and "thinkingBudget" in thinking:
            raise _reject(f"{spec.name} accepts thinkingLevel, not thinkingBudget")
        if spec.thinking == "budget" and "thinkingLevel" in thinking:
            raise _reject(f"{spec.name} accepts thinkingBudget, not thinkingLevel")
        budget = thinking.get("thinkingBudget")
        if budget is not None and not (budget == -1 or 0 <= budget <= 24576):
            raise _reject("thinkingBudget out of range")

    if gen.get("enableAffectiveDialog") is not None:
        if spec.affective == "no":
            raise _reject(f"{spec.name} does not support affective dialog")
        if api_version != "v1alpha":
            raise _reject("affective dialog is only available on v1alpha")

    proactivity = setup.get("proactivity")
    if proactivity is not None:
        if spec.proactive == "no":
            raise _reject(f"{spec.name} does not support proactivity")
        if spec.proactive == "v1alpha" and api_version != "v1alpha":
            raise _reject("proactivity is only available on v1alpha")
        if spec.proactive == "always" and proactivity.get("proactiveAudio") is False:
            raise _reject(f"proactive audio cannot be disabled on {spec.name}")

    for decl in function_declarations(setup):
        if not decl.get("name"):
            raise _reject("function declaration without a name")
        if decl.get("behavior") == "NON_BLOCKING" and not spec.non_blocking:
            raise _reject(f"{spec.name} supports synchronous (BLOCKING) function calls only")

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
