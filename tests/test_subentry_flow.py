"""Agent subentry flows: per-model option gating, create, reconfigure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.const import CONF_LLM_HASS_API, CONF_NAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
import probatio as vol
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.gemini_live.const import (
    CONF_AFFECTIVE_DIALOG,
    CONF_MODEL,
    CONF_PROACTIVE_AUDIO,
    SUBENTRY_AGENT,
)
from custom_components.gemini_live.live.messages import build_setup
from custom_components.gemini_live.options import build_setup_config

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
    "vocabulary",
    "smart_transcription",
}
# Written out by hand from the model table in docs/design.md (not derived from the code).
EXPECTED_LIVE_OPTIONS = {
    "gemini-3.8-live": COMMON | {"proactive_video"},
    "gemini-3.8-live-extended-thinking": COMMON
    | {"thinking_level", "include_thoughts", "proactive_video"},
    "gemini-3.1-flash-live-preview": COMMON | {"thinking_level", "include_thoughts"},
    "gemini-2.5-flash-native-audio-preview-12-2025": COMMON
    | {
        "response_modality",
        "thinking_budget",
        "include_thoughts",
        "affective_dialog",
        "proactive_audio",
        "proactive_video",
    },
    "gemini-2.5-flash-native-audio-preview-09-2025": COMMON
    | {
        "response_modality",
        "thinking_budget",
        "include_thoughts",
        "affective_dialog",
        "proactive_audio",
        "proactive_video",
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


STRINGS = json.loads(
    (
        Path(__file__).parent.parent / "custom_components" / "gemini_live" / "strings.json"
    ).read_text()
)
LIVE_HELP: dict[str, str] = STRINGS["config_subentries"]["conversation"]["step"]["live"][
    "data_description"
]
SERVICE_DECIDES = "Empty: the service decides"
# A value for each setting that the service decides when it is empty.
SAMPLE_VALUES: dict[str, Any] = {
    "language_code": "de-DE",
    "temperature": 0.7,
    "thinking_budget": 512,
    "thinking_level": "LOW",
    "start_sensitivity": "START_SENSITIVITY_LOW",
    "end_sensitivity": "END_SENSITIVITY_LOW",
    "prefix_padding_ms": 120,
    "silence_duration_ms": 600,
    "activity_handling": "NO_INTERRUPTION",
    "media_resolution": "MEDIA_RESOLUTION_LOW",
}


def _leaves(value: Any, path: str = "") -> set[str]:
    """The paths of a JSON value's leaves (``a.b.c``)."""
    if isinstance(value, dict):
        return {leaf for k, v in value.items() for leaf in _leaves(v, f"{path}.{k}")}
    if isinstance(value, list):
        return {leaf for i, v in enumerate(value) for leaf in _leaves(v, f"{path}[{i}]")}
    return {path}


def _setup_frame(model: str, options: dict[str, Any]) -> dict[str, Any]:
    frame: dict[str, Any] = build_setup(build_setup_config(model, options, system_instruction=None))
    return frame


async def _live_step(
    hass: HomeAssistant, entry: MockConfigEntry, model: str
) -> tuple[str, dict[str, Any]]:
    """Open "Add agent" up to the Live settings step for ``model``: (flow id, fields by key)."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_AGENT), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_NAME: "New", CONF_MODEL: model, CONF_LLM_HASS_API: ["assist"]},
    )
    assert result["step_id"] == "live"
    return result["flow_id"], {str(k): k for k in result["data_schema"].schema}


@pytest.mark.parametrize("model", list(EXPECTED_LIVE_OPTIONS))
async def test_live_settings_have_help_and_honest_defaults(
    hass: HomeAssistant, setup_integration: MockConfigEntry, model: str
) -> None:
    """Every Live setting has help; a default where the integration has one, else the service
    decides, and the help says "Empty: the service decides" exactly where that is true."""
    flow_id, fields = await _live_step(hass, setup_integration, model)
    service_decides = {key for key, marker in fields.items() if marker.default is vol.UNDEFINED}
    for key in fields:
        assert LIVE_HELP.get(key), f"no help text for {key}"
        assert (SERVICE_DECIDES in LIVE_HELP[key]) == (key in service_decides), key
    assert service_decides <= set(SAMPLE_VALUES)

    # Submitted untouched: the defaults are stored, the other settings are left out...
    result = await hass.config_entries.subentries.async_configure(flow_id, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    stored = result["data"]
    for key, marker in fields.items():
        if key in service_decides:
            assert key not in stored
        else:
            assert stored[key] == marker.default(), key
    # ...and those are not in the session setup: the service decides. Each is sent once set.
    empty = _setup_frame(model, stored)
    for key in service_decides:
        with_value = _setup_frame(model, {**stored, key: SAMPLE_VALUES[key]})
        assert _leaves(empty) < _leaves(with_value), key
    await hass.async_block_till_done()


async def test_reconfigure_can_empty_a_setting(
    hass: HomeAssistant, setup_integration: MockConfigEntry
) -> None:
    """A setting emptied in the form (left out of the submitted data) is removed."""
    subentry_id = next(iter(setup_integration.subentries))
    for temperature in (0.4, None):
        result = await hass.config_entries.subentries.async_init(
            (setup_integration.entry_id, SUBENTRY_AGENT),
            context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
        )
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {CONF_MODEL: "gemini-3.8-live", CONF_LLM_HASS_API: ["assist"]}
        )
        if temperature is not None:
            marker = next(k for k in result["data_schema"].schema if str(k) == "temperature")
            assert marker.description == {"suggested_value": None}
        live = {"temperature": temperature} if temperature is not None else {}
        result = await hass.config_entries.subentries.async_configure(result["flow_id"], live)
        assert result["reason"] == "reconfigure_successful"
        await hass.async_block_till_done()
        assert setup_integration.subentries[subentry_id].data.get("temperature") == temperature
