"""Per-model capability table and the gate that keeps unsupported setup options off the wire.

Facts as of the 2026-09 Live API docs (see docs/design.md "Models"). Sending an option a model does
not accept makes the real server close the socket with 1007, so ``check_setup`` refuses it first.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from .messages import Behavior, Modality, SetupConfig


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

    @property
    def supports_text(self) -> bool:
        """Whether the TEXT response modality is accepted."""
        return Modality.TEXT in self.modalities


MODELS: Final[dict[str, ModelCapabilities]] = {
    m.id: m
    for m in (
        ModelCapabilities(
            "gemini-3.8-live",
            Status.STABLE,
            frozenset({Modality.AUDIO}),
            non_blocking=True,
            non_blocking_default=True,
            affective=Support.NO,
            proactive=Support.ALWAYS,
            thinking=Thinking.NONE,
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
        ),
        *(
            ModelCapabilities(
                model_id,
                Status.PREVIEW,
                frozenset({Modality.AUDIO, Modality.TEXT}),
                non_blocking=True,
                non_blocking_default=False,
                affective=Support.V1ALPHA,
                proactive=Support.V1ALPHA,
                thinking=Thinking.BUDGET,
            )
            for model_id in (
                "gemini-2.5-flash-native-audio-preview-12-2025",
                "gemini-2.5-flash-native-audio-preview-09-2025",
            )
        ),
    )
}
DEFAULT_MODEL: Final = "gemini-3.8-live"
RETIRED_MODELS: Final = frozenset({"gemini-live-2.5-flash-preview", "gemini-2.0-flash-live-001"})


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
        caps.proactive is Support.V1ALPHA and cfg.proactive_audio is not None
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
        if caps.thinking is Thinking.BUDGET and cfg.thinking.level is not None:
            raise refuse("thinkingLevel", "use a thinking budget")
    if not caps.non_blocking and any(f.behavior is Behavior.NON_BLOCKING for f in cfg.functions):
        raise refuse("behavior", "only synchronous (BLOCKING) function calls are supported")
    return caps
