"""Constants for the Gemini Live integration."""

from __future__ import annotations

import logging
from typing import Any, Final

from .live.messages import DEFAULT_VOICE, Scheduling
from .live.models import DEFAULT_MODEL

DOMAIN: Final = "gemini_live"
LOGGER = logging.getLogger(__package__)

DEFAULT_TITLE: Final = "Gemini Live"
DEFAULT_AGENT_NAME: Final = "Gemini Live"
SUBENTRY_AGENT: Final = "conversation"

CONF_ENDPOINT: Final = "endpoint"
"""Optional base URL (an offline emulator or a proxy); empty means Google's service."""

# Agent subentry options
CONF_MODEL: Final = "model"
CONF_VOICE: Final = "voice"
CONF_LANGUAGE: Final = "language_code"
CONF_RESPONSE_MODALITY: Final = "response_modality"
CONF_TEMPERATURE: Final = "temperature"
CONF_THINKING_BUDGET: Final = "thinking_budget"
CONF_THINKING_LEVEL: Final = "thinking_level"
CONF_INCLUDE_THOUGHTS: Final = "include_thoughts"
CONF_AFFECTIVE_DIALOG: Final = "affective_dialog"
CONF_PROACTIVE_AUDIO: Final = "proactive_audio"
CONF_VAD_MODE: Final = "vad_mode"
CONF_START_SENSITIVITY: Final = "start_sensitivity"
CONF_END_SENSITIVITY: Final = "end_sensitivity"
CONF_PREFIX_PADDING_MS: Final = "prefix_padding_ms"
CONF_SILENCE_DURATION_MS: Final = "silence_duration_ms"
CONF_ACTIVITY_HANDLING: Final = "activity_handling"
CONF_MEDIA_RESOLUTION: Final = "media_resolution"
CONF_COMPRESSION: Final = "context_compression"
CONF_COMPRESSION_TRIGGER: Final = "compression_trigger_tokens"
CONF_COMPRESSION_TARGET: Final = "compression_target_tokens"
CONF_GOOGLE_SEARCH: Final = "google_search"
CONF_IDLE_TIMEOUT: Final = "idle_timeout"
CONF_TOOL_BEHAVIOR: Final = "tool_behavior"
CONF_SUCCESS_SCHEDULING: Final = "success_scheduling"
CONF_FAILURE_SCHEDULING: Final = "failure_scheduling"
CONF_TOOL_TIMEOUT: Final = "tool_timeout"
CONF_ANNOUNCE_TARGET: Final = "announce_target"
CONF_VOCABULARY: Final = "vocabulary"  # extra phrases for the input transcription
CONF_SMART_TRANSCRIPTION: Final = "smart_transcription"
CONF_PROACTIVE_VIDEO: Final = "proactive_video"
CONF_CURRENCY: Final = "currency"
SECTION_COSTS: Final = "costs"  # the agent form's section with the currency and prices
CONF_PRICE_INPUT_TEXT: Final = "price_input_text"
CONF_PRICE_INPUT_AUDIO: Final = "price_input_audio"
CONF_PRICE_OUTPUT_TEXT: Final = "price_output_text"
CONF_PRICE_OUTPUT_AUDIO: Final = "price_output_audio"

# Prices per million tokens for the estimated-cost sensor (the Live API's published prices for
# its native-audio models when written; users adjust them to their plan and currency).
DEFAULT_CURRENCY: Final = "USD"
DEFAULT_PRICES: Final[dict[str, float]] = {
    CONF_PRICE_INPUT_TEXT: 0.50,
    CONF_PRICE_INPUT_AUDIO: 3.00,
    CONF_PRICE_OUTPUT_TEXT: 2.00,
    CONF_PRICE_OUTPUT_AUDIO: 12.00,
}

VAD_AUTO: Final = "auto"
VAD_MANUAL: Final = "manual"

TOOL_BEHAVIOR_AUTO: Final = "auto"  # actions NON_BLOCKING where the model can, queries BLOCKING
TOOL_BEHAVIOR_BLOCKING: Final = "blocking"  # every call BLOCKING

DEFAULT_PROMPT: Final = (
    "You are a voice assistant for Home Assistant.\n"
    "Answer questions about the world truthfully.\n"
    "Answer in plain text, briefly: your answers are spoken aloud.\n"
    "When you control a device, say what you are doing in a few words."
)

DEFAULT_IDLE_TIMEOUT: Final = 300  # seconds a conversation's Live session stays open unused
DEFAULT_TOOL_TIMEOUT: Final = 30  # seconds before a running tool is answered with an error
DEFAULT_COMPRESSION_TRIGGER: Final = 25_600
DEFAULT_COMPRESSION_TARGET: Final = 12_800

RECOMMENDED_AGENT_OPTIONS: Final[dict[str, Any]] = {
    CONF_MODEL: DEFAULT_MODEL,
    CONF_VOICE: DEFAULT_VOICE,
    CONF_VAD_MODE: VAD_AUTO,
    CONF_COMPRESSION: True,
    CONF_IDLE_TIMEOUT: DEFAULT_IDLE_TIMEOUT,
    CONF_TOOL_BEHAVIOR: TOOL_BEHAVIOR_AUTO,
    CONF_SUCCESS_SCHEDULING: Scheduling.SILENT.value,
    CONF_FAILURE_SCHEDULING: Scheduling.INTERRUPT.value,
    CONF_TOOL_TIMEOUT: DEFAULT_TOOL_TIMEOUT,
}

HANDLE_VALIDITY_S: Final = 2 * 3600  # resumption handles are valid for 2 h
STORAGE_KEY: Final = f"{DOMAIN}.sessions"
STORAGE_VERSION: Final = 1

SIGNAL_USAGE: Final = f"{DOMAIN}_usage_{{}}"  # format with the agent's subentry id
