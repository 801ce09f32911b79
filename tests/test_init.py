"""Setup and unload of the integration in a real Home Assistant."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_integration
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.gemini_live import GeminiLiveData
from custom_components.gemini_live.const import CONF_ENDPOINT, DOMAIN
from live_emulator import Fault, LiveEmulator

from .conftest import TEST_API_KEY


async def test_integration_is_ours(hass: HomeAssistant) -> None:
    """HA resolves the domain to this repository's custom component."""
    integration = await async_get_integration(hass, DOMAIN)
    assert not integration.is_built_in
    assert integration.pkg_path == "custom_components.gemini_live"
    assert integration.config_flow


async def test_setup_and_unload(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, emulator: LiveEmulator
) -> None:
    """An entry loads (validated by a real Live setup), creates its entities, unloads cleanly."""
    await async_setup_component(hass, "conversation", {})
    states_before = set(hass.states.async_entity_ids())
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert isinstance(mock_config_entry.runtime_data, GeminiLiveData)
    assert mock_config_entry.runtime_data.api_key == TEST_API_KEY
    assert emulator.connections, "setup must validate the key with a real Live session"
    new = set(hass.states.async_entity_ids()) - states_before
    assert {e.split(".")[0] for e in new} == {"conversation", "sensor", "stt", "tts"}
    # agent, STT, TTS, 3 token totals and the cost (the 4 split by modality are disabled)
    assert len(new) == 7

    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.NOT_LOADED
    assert {
        e for e in hass.states.async_entity_ids() if hass.states.get(e).state != "unavailable"
    } == states_before
    assert not hass.config_entries.async_loaded_entries(DOMAIN)


async def test_invalid_key_starts_reauth(hass: HomeAssistant, emulator: LiveEmulator) -> None:
    """The server rejects the key at setup -> setup error + a reauth flow."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        data={CONF_API_KEY: "wrong", CONF_ENDPOINT: emulator.http_url},
        version=2,
        minor_version=1,
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == ["reauth"]


async def test_unreachable_is_not_ready(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, emulator: LiveEmulator
) -> None:
    """A server error at setup -> retry later (not ready)."""
    emulator.inject(
        Fault(
            "close",
            after_server_messages=0,
            code=1011,
            reason="The service is currently unavailable.",
        )
    )
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
