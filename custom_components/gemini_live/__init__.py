"""The Gemini Live integration: Google's Gemini Live API behind Home Assistant voice."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_API_KEY, Platform
from homeassistant.core import HomeAssistant

from .const import CONF_ENDPOINT

PLATFORMS: list[Platform] = []


@dataclass(slots=True)
class GeminiLiveData:
    """Runtime data of one config entry (one API key)."""

    api_key: str
    endpoint: str | None


type GeminiLiveConfigEntry = ConfigEntry[GeminiLiveData]


async def async_setup_entry(hass: HomeAssistant, entry: GeminiLiveConfigEntry) -> bool:
    """Set up Gemini Live from a config entry."""
    entry.runtime_data = GeminiLiveData(
        api_key=entry.data[CONF_API_KEY], endpoint=entry.data.get(CONF_ENDPOINT) or None
    )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: GeminiLiveConfigEntry) -> bool:
    """Unload a config entry."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
