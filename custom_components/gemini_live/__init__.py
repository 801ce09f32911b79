"""The Gemini Live integration: Google's Gemini Live API behind Home Assistant voice."""

from __future__ import annotations

from dataclasses import dataclass, field

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_API_KEY, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv, issue_registry as ir
from homeassistant.helpers.typing import ConfigType

from .assistant import async_create_requested_assistants, async_setup_pipeline_checks
from .const import CONF_ENDPOINT, DOMAIN, SUBENTRY_AGENT
from .live.errors import AuthenticationError, LiveError
from .migration import async_migrate_entry as _async_migrate_entry, foreign_issue_id
from .runtime.agent import Agent
from .runtime.handles import HandleStore
from .runtime.reachability import Reachability
from .services import async_setup_services
from .validation import async_validate_credentials, make_endpoint, ssl_context
from .websocket_api import async_register_websocket_commands

PLATFORMS: list[Platform] = [Platform.CONVERSATION, Platform.SENSOR, Platform.STT, Platform.TTS]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the websocket commands (``gemini_live/ephemeral_token``) and the actions."""
    async_register_websocket_commands(hass)
    async_setup_services(hass)
    async_setup_pipeline_checks(hass)  # repair issues about assistants that split an agent
    return True


async def async_migrate_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Migrate an entry to VERSION 2 (see migration.py); False with a repair issue if impossible."""
    return await _async_migrate_entry(hass, entry)


async def async_remove_entry(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """The entry is gone: delete its stored session handles and its "re-add" issue."""
    await HandleStore(hass, entry.entry_id).async_remove()
    ir.async_delete_issue(hass, DOMAIN, foreign_issue_id(entry.entry_id))


@dataclass(slots=True)
class GeminiLiveData:
    """Runtime data of one config entry (one API key)."""

    hass: HomeAssistant
    api_key: str
    endpoint: str | None
    store: HandleStore
    agents: dict[str, Agent] = field(default_factory=dict)
    reachability: Reachability = field(default_factory=Reachability)  # shared by the agents


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
    data = entry.runtime_data = GeminiLiveData(hass, api_key, endpoint, store)
    live_endpoint = make_endpoint(api_key, endpoint)
    for subentry in entry.subentries.values():
        if subentry.subentry_type == SUBENTRY_AGENT:
            data.agents[subentry.subentry_id] = Agent(
                hass,
                entry,
                subentry,
                live_endpoint,
                store,
                ssl_context=ssl_context(),
                reachability=data.reachability,
            )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    await async_create_requested_assistants(hass, entry)  # needs the agents' entities
    entry.async_on_unload(entry.add_update_listener(_async_update_listener))
    return True


async def _async_update_listener(hass: HomeAssistant, entry: GeminiLiveConfigEntry) -> None:
    """Subentries or data changed: reload."""
    await hass.config_entries.async_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: GeminiLiveConfigEntry) -> bool:
    """Unload a config entry (entities close their sessions), then save handles."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        for agent in entry.runtime_data.agents.values():
            await agent.async_close()
        await entry.runtime_data.store.async_flush()
    return unloaded
