"""Per-model capability table and the gate that keeps unsupported setup options off the wire.

The table is data: one ``ModelCapabilities`` row per model (facts of the Live API docs as of
2026-11). Sending an option a model does not accept makes the real server close the socket with
1007, so ``check_setup`` refuses it first.

When Google retires a model: add it to ``RETIRED`` (one line, with the date). It leaves the form;
agents still on it get the "model not available" repair, which moves them to ``DEFAULT_MODEL``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

from .messages import Behavior, Modality, SetupConfig, ThinkingLevel


class Support(StrEnum):
    """How a model supports an optional feature."""

    NO = "no"
    V1ALPHA = "v1alpha"  # only on the v1alpha API version
    YES = "yes"
    ALWAYS = "always"  # always on: sending "off" is an error


class Thinking(StrEnum):
    """Which thinking controls a model accepts."""

    NONE = "none"  # thinkingConfig must be omitted
    LEVEL = "level"  # thinkingLevel + includeThoughts
    BUDGET = "budget"  # thinkingBudget + includeThoughts


class Status(StrEnum):
    """Release status of a model."""

    STABLE = "stable"
    PREVIEW = "preview"
    LEGACY = "legacy"
    RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class ModelCapabilities:
    """What one Live model accepts."""

    id: str
    status: Status
    modalities: frozenset[Modality]
    non_blocking: bool  # NON_BLOCKING functions and response scheduling
    non_blocking_default: bool  # functions are NON_BLOCKING unless declared otherwise
    affective: Support
    proactive: Support
    thinking: Thinking
    context_window: int = 131_072
    thinking_levels: frozenset[ThinkingLevel] = frozenset()  # accepted levels (Thinking.LEVEL)
    blocking: bool = True  # BLOCKING declarations accepted (False: asynchronous calls only)
    background_reasoning: bool = False  # works on after its turn; interactionStatus IN_PROGRESS
    interim_transcription: bool = False  # interimInputTranscription while the user speaks

    @property
    def supports_text(self) -> bool:
        """Whether the TEXT response modality is accepted."""
        return Modality.TEXT in self.modalities


_LEVELS: Final = frozenset(ThinkingLevel)
_GEMINI_38: Final = ModelCapabilities(
    "gemini-3.8-live",
    Status.STABLE,
    frozenset({Modality.AUDIO}),
    non_blocking=True,
    non_blocking_default=True,
    affective=Support.NO,
    proactive=Support.ALWAYS,
    thinking=Thinking.NONE,
    interim_transcription=True,
)
_NATIVE_AUDIO_25: Final = ModelCapabilities(
    "gemini-2.5-flash-native-audio-preview-12-2025",
    Status.PREVIEW,
    frozenset({Modality.AUDIO, Modality.TEXT}),
    non_blocking=True,
    non_blocking_default=False,
    affective=Support.V1ALPHA,
    proactive=Support.V1ALPHA,
    thinking=Thinking.BUDGET,
)

MODEL_TABLE: Final[tuple[ModelCapabilities, ...]] = (
    _GEMINI_38,
    replace(
        _GEMINI_38,
        id="gemini-3.8-live-extended-thinking",
        thinking=Thinking.LEVEL,
        thinking_levels=frozenset({ThinkingLevel.LOW, ThinkingLevel.MEDIUM, ThinkingLevel.HIGH}),
        blocking=False,
        background_reasoning=True,
    ),
    ModelCapabilities(
        "gemini-3.1-flash-live-preview",
        Status.LEGACY,
        frozenset({Modality.AUDIO}),
        non_blocking=False,
        non_blocking_default=False,
        affective=Support.NO,
        proactive=Support.NO,
        thinking=Thinking.LEVEL,
        thinking_levels=_LEVELS - {ThinkingLevel.XHIGH},
    ),
    _NATIVE_AUDIO_25,
    replace(_NATIVE_AUDIO_25, id="gemini-2.5-flash-native-audio-preview-09-2025"),
)
# Model -> when Google stopped serving it (one line per retirement; see the module docstring).
RETIRED: Final[dict[str, str]] = {
    "gemini-2.0-flash-live-001": "2025-12-09",
    "gemini-live-2.5-flash-preview": "2025-12-09",
}
MODELS: Final[dict[str, ModelCapabilities]] = {m.id: m for m in MODEL_TABLE if m.id not in RETIRED}
DEFAULT_MODEL: Final = "gemini-3.8-live"
RETIRED_MODELS: Final = frozenset(RETIRED)


class UnsupportedOptionError(ValueError):
    """A setup option the chosen model does not accept."""

    def __init__(self, model: str, option: str, detail: str) -> None:
        """Describe which option of which model is refused."""
        super().__init__(f"{model} does not accept {option}: {detail}")
        self.model = model
        self.option = option


class UnknownModelError(ValueError):
    """A model id missing from the capability table."""


def get_model(model: str) -> ModelCapabilities:
    """Return the capabilities of ``model`` (with or without the ``models/`` prefix)."""
    key = model.removeprefix("models/")
    try:
        return MODELS[key]
    except KeyError:
        raise UnknownModelError(f"unknown Live model {model!r}") from None


def api_version(cfg: SetupConfig) -> str:
    """The API version the setup needs: v1alpha only for v1alpha-gated features."""
    caps = get_model(cfg.model)
    if (caps.affective is Support.V1ALPHA and cfg.affective_dialog is not None) or (
        caps.proactive is Support.V1ALPHA
        and (cfg.proactive_audio is not None or cfg.proactive_video is not None)
    ):
        return "v1alpha"
    return "v1beta"


def check_setup(cfg: SetupConfig) -> ModelCapabilities:
    """Raise UnsupportedOptionError for any option ``cfg.model`` does not accept."""
    caps = get_model(cfg.model)

    def refuse(option: str, detail: str) -> UnsupportedOptionError:
        return UnsupportedOptionError(caps.id, option, detail)

    if cfg.response_modality not in caps.modalities:
        raise refuse("responseModalities", f"{cfg.response_modality} output is not available")
    if cfg.affective_dialog is not None and caps.affective is Support.NO:
        raise refuse("enableAffectiveDialog", "affective dialog is not available")
    if cfg.proactive_audio is not None:
        if caps.proactive is Support.NO:
            raise refuse("proactivity", "proactive audio is not available")
        if caps.proactive is Support.ALWAYS and not cfg.proactive_audio:
            raise refuse("proactivity", "proactive audio is always on and cannot be disabled")
    if cfg.thinking is not None:
        if caps.thinking is Thinking.NONE:
            raise refuse("thinkingConfig", "thinking is not configurable")
        if caps.thinking is Thinking.LEVEL and cfg.thinking.budget is not None:
            raise refuse("thinkingBudget", "use a thinking level")
        if (
            caps.thinking is Thinking.LEVEL
            and cfg.thinking.level is not None
            and cfg.thinking.level not in caps.thinking_levels
        ):
            raise refuse("thinkingLevel", f"{cfg.thinking.level} is not one of its levels")
        if caps.thinking is Thinking.BUDGET and cfg.thinking.level is not None:
            raise refuse("thinkingLevel", "use a thinking budget")
    if not caps.non_blocking and any(f.behavior is Behavior.NON_BLOCKING for f in cfg.functions):
        raise refuse("behavior", "only synchronous (BLOCKING) function calls are supported")
    if not caps.blocking and any(f.behavior is Behavior.BLOCKING for f in cfg.functions):
        raise refuse("behavior", "only asynchronous (NON_BLOCKING) function calls are supported")
    proactive_audio_on = caps.proactive is Support.ALWAYS or (
        caps.proactive is Support.V1ALPHA and bool(cfg.proactive_audio)
    )
    if cfg.proactive_video and not proactive_audio_on:
        raise refuse("proactivity.proactiveVideo", "proactive video needs proactive audio on")
    return caps
