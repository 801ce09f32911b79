"""Base entity: one device per agent subentry."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigSubentry
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_MODEL, DOMAIN, SUBENTRY_AGENT
from .live.models import DEFAULT_MODEL

if TYPE_CHECKING:
    from . import GeminiLiveConfigEntry
    from .runtime.agent import Agent


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


def async_add_agent_entities(
    entry: GeminiLiveConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    create: Callable[[GeminiLiveConfigEntry, ConfigSubentry], Iterable[Entity]],
) -> None:
    """Add a platform's entities for every agent subentry (on the agent's device)."""
    for subentry in entry.subentries.values():
        if subentry.subentry_type == SUBENTRY_AGENT:
            async_add_entities(
                list(create(entry, subentry)), config_subentry_id=subentry.subentry_id
            )
