"""The integration's actions: ``gemini_live.announce``."""

from __future__ import annotations

from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv, entity_registry as er
import probatio as vol

from .const import DOMAIN
from .errors import session_error
from .live.errors import LiveError
from .repairs import async_report_error
from .runtime.agent import Agent
from .runtime.playback import can_play

SERVICE_ANNOUNCE = "announce"
ATTR_AGENT = "agent"
ATTR_PROMPT = "prompt"
ATTR_TARGETS = "targets"

ANNOUNCE_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_AGENT): cv.entity_id,
        vol.Required(ATTR_PROMPT): cv.string,
        vol.Required(ATTR_TARGETS): cv.entity_ids,
    }
)


def _agent_for(hass: HomeAssistant, entity_id: str) -> Agent:
    entry = er.async_get(hass).async_get(entity_id)
    if entry is None or entry.platform != DOMAIN or entry.domain != "conversation":
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="not_an_agent",
            translation_placeholders={"entity_id": entity_id},
        )
    for config_entry in hass.config_entries.async_loaded_entries(DOMAIN):
        agents: dict[str, Agent] = config_entry.runtime_data.agents
        if entry.config_subentry_id in agents:
            return agents[entry.config_subentry_id]
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="agent_not_loaded",
        translation_placeholders={"entity_id": entity_id},
    )


async def _async_announce(call: ServiceCall) -> ServiceResponse:
    agent = _agent_for(call.hass, call.data[ATTR_AGENT])
    for target in call.data[ATTR_TARGETS]:
        if target.split(".", 1)[0] not in ("media_player", "assist_satellite"):
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="bad_target",
                translation_placeholders={"entity_id": target},
            )
        if not can_play(call.hass, target):
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="cannot_play",
                translation_placeholders={"entity_id": target},
            )
    try:
        said = await agent.async_announce(call.data[ATTR_PROMPT], call.data[ATTR_TARGETS])
    except LiveError as err:
        async_report_error(call.hass, agent.entry, agent.subentry, err)
        raise session_error(err) from err
    return {"text": said} if call.return_response else None


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions (once, at integration setup)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_ANNOUNCE,
        _async_announce,
        schema=ANNOUNCE_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
