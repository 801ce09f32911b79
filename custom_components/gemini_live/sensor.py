"""Token usage sensors per agent (cumulative, restored across restarts)."""

from __future__ import annotations

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import GeminiLiveConfigEntry
from .const import SIGNAL_USAGE
from .entity import GeminiLiveEntity, async_add_agent_entities
from .live.messages import Usage

PARALLEL_UPDATES = 0

DESCRIPTIONS = (
    SensorEntityDescription(key="prompt_tokens", translation_key="prompt_tokens"),
    SensorEntityDescription(key="response_tokens", translation_key="response_tokens"),
    SensorEntityDescription(key="total_tokens", translation_key="total_tokens"),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: GeminiLiveConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Three usage sensors per agent."""
    async_add_agent_entities(
        entry, async_add_entities, lambda e, s: [UsageSensor(e, s, d) for d in DESCRIPTIONS]
    )


class UsageSensor(GeminiLiveEntity, RestoreSensor):
    """Cumulative token count of one kind for an agent."""

    _attr_state_class = SensorStateClass.TOTAL_INCREASING
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_native_unit_of_measurement = "tokens"
    _attr_suggested_display_precision = 0

    def __init__(
        self,
        entry: GeminiLiveConfigEntry,
        subentry: ConfigSubentry,
        description: SensorEntityDescription,
    ) -> None:
        """Initialise at zero (restored in async_added_to_hass)."""
        super().__init__(entry, subentry)
        self.entity_description = description
        self._attr_unique_id = f"{subentry.subentry_id}_{description.key}"
        self._total = 0
        self._attr_native_value = 0

    async def async_added_to_hass(self) -> None:
        """Restore the total and follow usage reports."""
        await super().async_added_to_hass()
        last = await self.async_get_last_sensor_data()
        if last is not None and isinstance(value := last.native_value, (int, float, str)):
            self._total = int(float(value))
            self._attr_native_value = self._total
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, SIGNAL_USAGE.format(self.subentry.subentry_id), self._on_usage
            )
        )

    @callback
    def _on_usage(self, usage: Usage) -> None:
        add: int = getattr(usage, self.entity_description.key)
        self._total += add
        self._attr_native_value = self._total
        self.async_write_ha_state()
