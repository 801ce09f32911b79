"""Agent subentry flows: per-model option gating, create, reconfigure."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.const import CONF_LLM_HASS_API, CONF_NAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.gemini_live.const import (
    CONF_AFFECTIVE_DIALOG,
    CONF_MODEL,
    CONF_PROACTIVE_AUDIO,
    SUBENTRY_AGENT,
)

from .conftest import agent_data

COMMON = {
    "voice",
    "language_code",
    "temperature",
    "vad_mode",
    "start_sensitivity",
    "end_sensitivity",
    "prefix_padding_ms",
    "silence_duration_ms",
    "activity_handling",
    "media_resolution",
    "context_compression",
    "compression_trigger_tokens",
    "compression_target_tokens",
    "google_search",
}
# Written out by hand from the model table in docs/design.md (not derived from the code).
EXPECTED_LIVE_OPTIONS = {
    "gemini-3.8-live": COMMON,
    "gemini-3.1-flash-live-preview": COMMON | {"thinking_level", "include_thoughts"},
    "gemini-2.5-flash-native-audio-preview-12-2025": COMMON
    | {
        "response_modality",
        "thinking_budget",
        "include_thoughts",
        "affective_dialog",
        "proactive_audio",
    },
    "gemini-2.5-flash-native-audio-preview-09-2025": COMMON
    | {
        "response_modality",
        "thinking_budget",
        "include_thoughts",
        "affective_dialog",
        "proactive_audio",
    },
}


def _keys(result: Any) -> set[str]:
    return {str(key) for key in result["data_schema"].schema}


@pytest.mark.parametrize("model", list(EXPECTED_LIVE_OPTIONS))
async def test_live_step_offers_only_accepted_options(
    hass: HomeAssistant, setup_integration: MockConfigEntry, model: str
) -> None:
    """The Live settings step shows exactly what the chosen model accepts."""
    result = await hass.config_entries.subentries.async_init(
        (setup_integration.entry_id, SUBENTRY_AGENT), context={"source": SOURCE_USER}
    )
    assert result["step_id"] == "agent"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_NAME: f"Agent {model}", CONF_MODEL: model, CONF_LLM_HASS_API: ["assist"]},
    )
    assert result["step_id"] == "live"
    assert _keys(result) == EXPECTED_LIVE_OPTIONS[model]
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"voice": "Kore"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_MODEL] == model
    assert result["data"]["voice"] == "Kore"
    await hass.async_block_till_done()
    entity_registry = er.async_get(hass)
    subentry_ids = {
        e.config_subentry_id
        for e in er.async_entries_for_config_entry(entity_registry, setup_integration.entry_id)
        if e.domain == "conversation"
    }
    assert len(subentry_ids) == 2  # the default agent and the new one


@pytest.mark.parametrize(
    "agent_options",
    [
        agent_data(
            **{
                CONF_MODEL: "gemini-2.5-flash-native-audio-preview-12-2025",
                CONF_AFFECTIVE_DIALOG: True,
                CONF_PROACTIVE_AUDIO: True,
            }
        )
    ],
)
async def test_reconfigure_to_other_model_drops_unaccepted(
    hass: HomeAssistant, setup_integration: MockConfigEntry
) -> None:
    """Switching to a model without affective/proactive removes those settings."""
    subentry = next(iter(setup_integration.subentries.values()))
    result = await hass.config_entries.subentries.async_init(
        (setup_integration.entry_id, SUBENTRY_AGENT),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry.subentry_id},
    )
    assert result["step_id"] == "agent"
    assert CONF_NAME not in _keys(result)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_MODEL: "gemini-3.8-live", CONF_LLM_HASS_API: ["assist"]}
    )
    assert result["step_id"] == "live"
    assert CONF_AFFECTIVE_DIALOG not in _keys(result)
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    data = setup_integration.subentries[subentry.subentry_id].data
    assert data[CONF_MODEL] == "gemini-3.8-live"
    assert CONF_AFFECTIVE_DIALOG not in data
    assert CONF_PROACTIVE_AUDIO not in data


async def test_subentry_needs_loaded_entry(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """Adding an agent to an entry that is not loaded aborts clearly."""
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.subentries.async_init(
        (mock_config_entry.entry_id, SUBENTRY_AGENT), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "entry_not_loaded"
