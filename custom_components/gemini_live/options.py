"""Agent options: which ones a model accepts, and how they become a Live setup.

The subentry form offers only ``offered_options(model)``, and ``build_setup_config`` reads only
those, so an option a model does not accept is neither shown nor sent (stale values left over from
another model are ignored).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from .const import (
    CONF_ACTIVITY_HANDLING,
    CONF_AFFECTIVE_DIALOG,
    CONF_COMPRESSION,
    CONF_COMPRESSION_TARGET,
    CONF_COMPRESSION_TRIGGER,
    CONF_END_SENSITIVITY,
    CONF_GOOGLE_SEARCH,
    CONF_INCLUDE_THOUGHTS,
    CONF_LANGUAGE,
    CONF_MEDIA_RESOLUTION,
    CONF_PREFIX_PADDING_MS,
    CONF_PROACTIVE_AUDIO,
    CONF_PROACTIVE_VIDEO,
    CONF_RESPONSE_MODALITY,
    CONF_SILENCE_DURATION_MS,
    CONF_SMART_TRANSCRIPTION,
    CONF_START_SENSITIVITY,
    CONF_TEMPERATURE,
    CONF_THINKING_BUDGET,
    CONF_THINKING_LEVEL,
    CONF_VAD_MODE,
    CONF_VOCABULARY,
    CONF_VOICE,
    DEFAULT_COMPRESSION_TARGET,
    DEFAULT_COMPRESSION_TRIGGER,
    LOGGER,
    VAD_MANUAL,
)
from .live.messages import (
    ActivityHandling,
    CompressionConfig,
    EndSensitivity,
    FunctionDeclaration,
    MediaResolution,
    Modality,
    SetupConfig,
    StartSensitivity,
    ThinkingConfig,
    ThinkingLevel,
    VadConfig,
)
from .live.models import ModelCapabilities, Support, Thinking, get_model

# Options every model accepts.
COMMON_OPTIONS = frozenset(
    {
        CONF_VOICE,
        CONF_LANGUAGE,
        CONF_TEMPERATURE,
        CONF_VAD_MODE,
        CONF_START_SENSITIVITY,
        CONF_END_SENSITIVITY,
        CONF_PREFIX_PADDING_MS,
        CONF_SILENCE_DURATION_MS,
        CONF_ACTIVITY_HANDLING,
        CONF_MEDIA_RESOLUTION,
        CONF_COMPRESSION,
        CONF_COMPRESSION_TRIGGER,
        CONF_COMPRESSION_TARGET,
        CONF_GOOGLE_SEARCH,
        CONF_VOCABULARY,
        CONF_SMART_TRANSCRIPTION,
    }
)


def offered_options(caps: ModelCapabilities) -> frozenset[str]:
    """The Live options the model accepts (shown in the form, read into the setup)."""
    offered = set(COMMON_OPTIONS)
    if caps.supports_text:
        offered.add(CONF_RESPONSE_MODALITY)
    if caps.thinking is Thinking.BUDGET:
        offered |= {CONF_THINKING_BUDGET, CONF_INCLUDE_THOUGHTS}
    elif caps.thinking is Thinking.LEVEL:
        offered |= {CONF_THINKING_LEVEL, CONF_INCLUDE_THOUGHTS}
    if caps.affective in (Support.YES, Support.V1ALPHA):
        offered.add(CONF_AFFECTIVE_DIALOG)
    if caps.proactive in (Support.YES, Support.V1ALPHA):
        offered.add(CONF_PROACTIVE_AUDIO)
    if caps.proactive is not Support.NO:
        offered.add(CONF_PROACTIVE_VIDEO)
    return frozenset(offered)


def build_setup_config(
    model: str,
    options: Mapping[str, Any],
    *,
    system_instruction: str | None,
    functions: Sequence[FunctionDeclaration] = (),
    text_only: bool = False,
    resumption_handle: str | None = None,
    vocabulary: Sequence[str] = (),
) -> SetupConfig:
    """Translate stored agent options into a SetupConfig for ``model``.

    ``text_only`` asks for a reply the chat can show: TEXT where the model has it, otherwise
    AUDIO with output transcription (the audio is dropped by the caller). ``vocabulary``
    biases the input transcription (the home's names, see runtime/vocabulary.py).
    """
    caps = get_model(model)
    offered = offered_options(caps)

    def opt(key: str) -> Any:
        return options.get(key) if key in offered else None

    modality = Modality(opt(CONF_RESPONSE_MODALITY) or Modality.AUDIO)
    if text_only and caps.supports_text:
        modality = Modality.TEXT

    budget, level = _int(opt(CONF_THINKING_BUDGET)), opt(CONF_THINKING_LEVEL)
    thoughts = True if opt(CONF_INCLUDE_THOUGHTS) else None
    thinking: ThinkingConfig | None = ThinkingConfig(
        budget=budget, level=_enum(ThinkingLevel, level), include_thoughts=thoughts
    )
    if thinking == ThinkingConfig():
        thinking = None

    manual = opt(CONF_VAD_MODE) == VAD_MANUAL
    vad = VadConfig(
        disabled=manual,
        start_sensitivity=_enum(StartSensitivity, opt(CONF_START_SENSITIVITY)),
        end_sensitivity=_enum(EndSensitivity, opt(CONF_END_SENSITIVITY)),
        prefix_padding_ms=_int(opt(CONF_PREFIX_PADDING_MS)),
        silence_duration_ms=_int(opt(CONF_SILENCE_DURATION_MS)),
    )
    compression = None
    if opt(CONF_COMPRESSION) is not False:  # on by default
        compression = CompressionConfig(
            trigger_tokens=_int(opt(CONF_COMPRESSION_TRIGGER)) or DEFAULT_COMPRESSION_TRIGGER,
            target_tokens=_int(opt(CONF_COMPRESSION_TARGET)) or DEFAULT_COMPRESSION_TARGET,
        )
    temperature = opt(CONF_TEMPERATURE)
    # Proactive video needs proactive audio on (always on for some models).
    proactive_ok = caps.proactive is Support.ALWAYS or bool(opt(CONF_PROACTIVE_AUDIO))
    return SetupConfig(
        model=caps.id,
        response_modality=modality,
        temperature=None if temperature is None else float(temperature),
        media_resolution=_enum(MediaResolution, opt(CONF_MEDIA_RESOLUTION)),
        voice=opt(CONF_VOICE) or None,
        language_code=opt(CONF_LANGUAGE) or None,
        thinking=thinking,
        affective_dialog=True if opt(CONF_AFFECTIVE_DIALOG) else None,
        proactive_audio=True if opt(CONF_PROACTIVE_AUDIO) else None,
        proactive_video=True if opt(CONF_PROACTIVE_VIDEO) and proactive_ok else None,
        system_instruction=system_instruction,
        functions=tuple(functions),
        google_search=bool(opt(CONF_GOOGLE_SEARCH)),
        vad=vad if vad != VadConfig() else None,
        activity_handling=_enum(ActivityHandling, opt(CONF_ACTIVITY_HANDLING)),
        input_transcription=True,
        transcription_vocabulary=tuple(vocabulary),
        smart_transcription=bool(opt(CONF_SMART_TRANSCRIPTION)),
        output_transcription=modality is Modality.AUDIO,
        compression=compression,
        session_resumption=True,
        resumption_handle=resumption_handle,
    )


def _enum[E](kind: type[E], value: Any) -> E | None:
    return None if value in (None, "") else kind(value)  # type: ignore[call-arg]


def _int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


CHARS_PER_TOKEN: Final = 4  # rough estimate for prompt budgeting


def trim_system_prompt(prompt: str, context_window: int) -> str:
    """Keep the system instruction within a quarter of the model's context window.

    Policy: the head of the prompt (persona, instructions, API prompt) is kept; lines are dropped
    from the end (where HA lists the home's entities) until it fits, and a note says so.
    """
    budget_chars = context_window // 4 * CHARS_PER_TOKEN
    if len(prompt) <= budget_chars:
        return prompt
    LOGGER.warning(
        "The system prompt (~%d tokens) exceeds the budget of %d tokens for this model; "
        "trimming the home context at its end. Expose fewer entities to Assist to avoid this",
        len(prompt) // CHARS_PER_TOKEN,
        budget_chars // CHARS_PER_TOKEN,
    )
    note = "\n(The list above was shortened to fit.)"
    cut = prompt[: budget_chars - len(note)]
    if "\n" in cut:
        cut = cut[: cut.rfind("\n")]
    return cut + note
