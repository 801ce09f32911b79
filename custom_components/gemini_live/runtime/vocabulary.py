"""The home's words, to bias the Live input transcription toward them (``customVocabulary``).

"Turn on the Ikea Strala" should be heard as the lamp's name, not as something that sounds
close. The phrases are the names and aliases of the entities exposed to Assist, their areas'
names and aliases, and their devices' names, plus the agent's extra phrases.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from homeassistant.components.homeassistant.exposed_entities import async_should_expose
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import (
    area_registry as ar,
    device_registry as dr,
    entity_registry as er,
    intent,
)

MAX_PHRASES: Final = 200  # enough for a home; keeps the setup message small
MAX_PHRASE_CHARS: Final = 80


@callback
def home_vocabulary(hass: HomeAssistant, extra: Iterable[str] = ()) -> list[str]:
    """Distinct phrases: the agent's extra ones first, then the exposed entities' names."""
    ent_reg = er.async_get(hass)
    dev_reg = dr.async_get(hass)
    area_reg = ar.async_get(hass)
    phrases: dict[str, str] = {}  # casefolded -> as written

    def add(text: str | None) -> None:
        if text and (clean := " ".join(text.split())) and len(clean) <= MAX_PHRASE_CHARS:
            phrases.setdefault(clean.casefold(), clean)

    for phrase in extra:
        add(phrase)
    for state in hass.states.async_all():
        if not async_should_expose(hass, "conversation", state.entity_id):
            continue
        entry = ent_reg.async_get(state.entity_id)
        for alias in intent.async_get_entity_aliases(hass, entry, state=state):
            add(alias)
        area_id = entry.area_id if entry else None
        if entry is not None and entry.device_id and (device := dev_reg.async_get(entry.device_id)):
            add(device.name_by_user or device.name)
            area_id = area_id or device.area_id
        if area_id and (area := area_reg.async_get_area(area_id)):
            add(area.name)
            for alias in area.aliases:
                add(alias)
    return list(phrases.values())[:MAX_PHRASES]
