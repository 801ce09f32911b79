"""Token usage and estimated cost sensors per agent (totals, restored across restarts).

The Live service reports usage per turn (``usageMetadata``): the context the turn read (it grows
turn after turn and is billed again each turn) and what it generated, split by modality. The
sensors add up every report; the cost sensor prices each with the agent's prices (per million
tokens; audio and text are priced differently).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import GeminiLiveConfigEntry
from .const import (
    CONF_CURRENCY,
    CONF_PRICE_INPUT_AUDIO,
    CONF_PRICE_INPUT_TEXT,
    CONF_PRICE_OUTPUT_AUDIO,
    CONF_PRICE_OUTPUT_TEXT,
    DEFAULT_CURRENCY,
    DEFAULT_PRICES,
    SIGNAL_USAGE,
)
from .entity import GeminiLiveEntity, async_add_agent_entities
from .live.messages import Usage

PARALLEL_UPDATES = 0


def usage_cost(usage: Usage, prices: Mapping[str, Any]) -> float:
    """The estimated cost of one usage report (prices per million tokens).

    Tokens the report does not split by modality are priced as text.
    """

    def price(key: str) -> float:
        return float(prices.get(key, DEFAULT_PRICES[key])) / 1_000_000

    prompt_rest = max(0, usage.prompt_tokens - usage.prompt_text - usage.prompt_audio)
    response_rest = max(0, usage.response_tokens - usage.response_text - usage.response_audio)
    return (
        (usage.prompt_text + prompt_rest) * price(CONF_PRICE_INPUT_TEXT)
        + usage.prompt_audio * price(CONF_PRICE_INPUT_AUDIO)
        + (usage.response_text + response_rest + usage.thoughts_tokens)
        * price(CONF_PRICE_OUTPUT_TEXT)
        + usage.response_audio * price(CONF_PRICE_OUTPUT_AUDIO)
    )


@dataclass(frozen=True, kw_only=True)
class UsageSensorDescription(SensorEntityDescription):
    """How a sensor's share of one usage report is computed."""

    value_fn: Callable[[Usage, Mapping[str, Any]], float]


def _tokens(key: str, attribute: str, *, enabled: bool = True) -> UsageSensorDescription:
    """A running token count: ``attribute`` of each usage report."""
    return UsageSensorDescription(
        key=key,
        translation_key=key,
        entity_registry_enabled_default=enabled,
        native_unit_of_measurement="tokens",
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=0,
        value_fn=lambda usage, _prices: float(getattr(usage, attribute)),
    )


# The split by modality is for the curious: disabled until a user enables it.
DESCRIPTIONS: tuple[UsageSensorDescription, ...] = (
    _tokens("prompt_tokens", "prompt_tokens"),
    _tokens("response_tokens", "response_tokens"),
    _tokens("total_tokens", "total_tokens"),
    _tokens("prompt_audio_tokens", "prompt_audio", enabled=False),
    _tokens("prompt_text_tokens", "prompt_text", enabled=False),
    _tokens("response_audio_tokens", "response_audio", enabled=False),
    _tokens("response_text_tokens", "response_text", enabled=False),
)
COST = UsageSensorDescription(
    key="estimated_cost",
    translation_key="estimated_cost",
    device_class=SensorDeviceClass.MONETARY,
    state_class=SensorStateClass.TOTAL,
    suggested_display_precision=4,
    value_fn=usage_cost,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: GeminiLiveConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The usage sensors of every agent."""
    async_add_agent_entities(
        entry,
        async_add_entities,
        lambda e, s: [UsageSensor(e, s, d) for d in (*DESCRIPTIONS, COST)],
    )


class UsageSensor(GeminiLiveEntity, RestoreSensor):
    """A running total over an agent's usage reports."""

    entity_description: UsageSensorDescription
    _attr_entity_category = EntityCategory.DIAGNOSTIC

    def __init__(
        self,
        entry: GeminiLiveConfigEntry,
        subentry: ConfigSubentry,
        description: UsageSensorDescription,
    ) -> None:
        """Initialise at zero (restored in async_added_to_hass)."""
        super().__init__(entry, subentry)
        self.entity_description = description
        self._attr_unique_id = f"{subentry.subentry_id}_{description.key}"
        if description.device_class is SensorDeviceClass.MONETARY:
            self._attr_native_unit_of_measurement = str(
                subentry.data.get(CONF_CURRENCY) or DEFAULT_CURRENCY
            )
        self._total = 0.0
        self._attr_native_value = 0

    async def async_added_to_hass(self) -> None:
        """Restore the total and follow usage reports."""
        await super().async_added_to_hass()
        last = await self.async_get_last_sensor_data()
        if last is not None and isinstance(value := last.native_value, (int, float, str)):
            self._total = float(value)
            self._attr_native_value = self._value()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, SIGNAL_USAGE.format(self.subentry.subentry_id), self._on_usage
            )
        )

    def _value(self) -> float:
        if self.entity_description.device_class is SensorDeviceClass.MONETARY:
            return round(self._total, 6)
        return int(self._total)

    @callback
    def _on_usage(self, usage: Usage) -> None:
        self._total += self.entity_description.value_fn(usage, self.subentry.data)
        self._attr_native_value = self._value()
        self.async_write_ha_state()
