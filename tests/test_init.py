"""Setup and unload of the integration in a real Home Assistant."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_integration
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.gemini_live import GeminiLiveData
from custom_components.gemini_live.const import DOMAIN

from .conftest import TEST_API_KEY


async def test_integration_is_ours(hass: HomeAssistant) -> None:
    """HA resolves the domain to this repository's custom component."""
    integration = await async_get_integration(hass, DOMAIN)
    assert not integration.is_built_in
    assert integration.pkg_path == "custom_components.gemini_live"
    assert integration.config_flow


async def test_setup_and_unload(hass: HomeAssistant, mock_config_entry: MockConfigEntry) -> None:
    """An entry loads with runtime_data and unloads leaving nothing behind."""
    mock_config_entry.add_to_hass(hass)
    await async_setup_component(hass, "conversation", {})
    states_before = set(hass.states.async_entity_ids())
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert isinstance(mock_config_entry.runtime_data, GeminiLiveData)
    assert mock_config_entry.runtime_data.api_key == TEST_API_KEY
    assert mock_config_entry.runtime_data.endpoint is None
    assert hass.states.async_entity_ids(DOMAIN) == []

    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.NOT_LOADED
    assert set(hass.states.async_entity_ids()) == states_before
    assert not hass.config_entries.async_loaded_entries(DOMAIN)
