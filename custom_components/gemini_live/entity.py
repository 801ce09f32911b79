"""Base entity: one device per agent subentry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigSubentry
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity

from .const import CONF_MODEL, DOMAIN
from .live.models import DEFAULT_MODEL

if TYPE_CHECKING:
    from . import GeminiLiveConfigEntry
    from .agent import Agent


class GeminiLiveEntity(Entity):
    """An entity of a Gemini Live agent."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, entry: GeminiLiveConfigEntry, subentry: ConfigSubentry) -> None:
        """Attach to the agent's device."""
        self.entry = entry
        self.subentry = subentry
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, subentry.subentry_id)},
            name=subentry.title,
            manufacturer="Google",
            model=subentry.data.get(CONF_MODEL, DEFAULT_MODEL),
            entry_type=DeviceEntryType.SERVICE,
        )

    @property
    def agent(self) -> Agent:
        """The runtime of this entity's agent."""
        return self.entry.runtime_data.agents[self.subentry.subentry_id]
