"""The Gemini Live integration: Google's Gemini Live API behind Home Assistant voice."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_API_KEY, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady

from .const import CONF_ENDPOINT, DOMAIN
from .live.connection import AuthenticationError, LiveError
from .sessions import HandleStore
from .validation import async_validate_credentials

PLATFORMS: list[Platform] = [Platform.CONVERSATION, Platform.SENSOR]


@dataclass(slots=True)
class GeminiLiveData:
    """Runtime data of one config entry (one API key)."""

    hass: HomeAssistant
    api_key: str
    endpoint: str | None
    store: HandleStore


type GeminiLiveConfigEntry = ConfigEntry[GeminiLiveData]


async def async_setup_entry(hass: HomeAssistant, entry: GeminiLiveConfigEntry) -> bool:
    """Set up Gemini Live from a config entry."""
    api_key: str = entry.data[CONF_API_KEY]
    endpoint: str | None = entry.data.get(CONF_ENDPOINT) or None
    try:
        await async_validate_credentials(hass, api_key, endpoint)
    except AuthenticationError as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="invalid_auth"
        ) from err
    except LiveError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"error": str(err)},
        ) from err
    store = HandleStore(hass, entry.entry_id)
    await store.async_load()
    entry.runtime_data = GeminiLiveData(hass, api_key, endpoint, store)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_on_unload(entry.add_update_listener(_async_update_listener))
    return True


async def _async_update_listener(hass: HomeAssistant, entry: GeminiLiveConfigEntry) -> None:
    """Subentries or data changed: reload."""
    await hass.config_entries.async_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: GeminiLiveConfigEntry) -> bool:
    """Unload a config entry (entities close their sessions), then save handles."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.store.async_flush()
    return unloaded
