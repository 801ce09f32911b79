"""Config entry migration: adopt a version 1 entry left by another ``gemini_live`` integration.

Another HACS integration used this domain with config entry VERSION 1 and data such as
``api_key, model, voice, system_instruction`` (sometimes ``temperature``, ``language``, ...). Our
entries are VERSION 2: ``{api_key, endpoint}`` plus one subentry per agent. A v1 entry with an API
key becomes a v2 entry with one agent built from whatever maps onto our options; anything else is
dropped. Without a usable key the entry cannot migrate: a repair issue asks the user to remove and
re-add the integration, and setup of that entry stops (HA shows it as a migration error).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.const import CONF_API_KEY, CONF_LLM_HASS_API, CONF_PROMPT
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
    llm,
)

from .const import (
    CONF_ENDPOINT,
    CONF_LANGUAGE,
    CONF_MODEL,
    CONF_TEMPERATURE,
    CONF_VOICE,
    DEFAULT_AGENT_NAME,
    DEFAULT_PROMPT,
    DOMAIN,
    LOGGER,
    RECOMMENDED_AGENT_OPTIONS,
    SUBENTRY_AGENT,
)
from .live.messages import DEFAULT_VOICE, VOICES
from .live.models import DEFAULT_MODEL, MODELS

CURRENT_VERSION: Final = 2
CURRENT_MINOR_VERSION: Final = 1
ISSUE_FOREIGN_ENTRY: Final = "foreign_entry"

# Keys a foreign v1 entry may use for the system prompt / speech language, in preference order.
_PROMPT_KEYS: Final = ("system_instruction", "system_prompt", "prompt", "instructions")
_LANGUAGE_KEYS: Final = ("language", "language_code")


class MigrationError(ValueError):
    """A v1 entry that cannot be turned into one of ours."""


def foreign_issue_id(entry_id: str) -> str:
    """Issue id of the "remove and re-add" repair for one entry."""
    return f"{ISSUE_FOREIGN_ENTRY}_{entry_id}"


def _model(value: Any) -> str:
    if isinstance(value, str) and (model := value.strip().removeprefix("models/")) in MODELS:
        return model
    return DEFAULT_MODEL


def _voice(value: Any) -> str:
    if isinstance(value, str):
        by_lower = {v.lower(): v for v in VOICES}
        if (voice := by_lower.get(value.strip().lower())) is not None:
            return voice
    return DEFAULT_VOICE


def _temperature(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        temperature = float(value)
    except ValueError:
        return None
    return temperature if 0.0 <= temperature <= 2.0 else None


def _first_text(source: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if isinstance(value := source.get(key), str) and value.strip():
            return value
    return None


def agent_from_v1(source: Mapping[str, Any]) -> tuple[dict[str, Any], list[str], list[str]]:
    """Our agent options from a foreign v1 entry.

    Returns the options, the source settings taken over, and those replaced by our defaults
    (a model or voice we do not know).
    """
    options: dict[str, Any] = {
        **RECOMMENDED_AGENT_OPTIONS,
        CONF_PROMPT: DEFAULT_PROMPT,
        CONF_LLM_HASS_API: [llm.LLM_API_ASSIST],
    }
    kept: list[str] = []
    replaced: list[str] = []
    for key, convert in (("model", _model), ("voice", _voice)):
        if key not in source:
            continue
        options[key] = convert(source[key])
        raw = str(source[key]).strip().removeprefix("models/").lower()
        (kept if raw == options[key].lower() else replaced).append(key)
    if (prompt := _first_text(source, _PROMPT_KEYS)) is not None:
        options[CONF_PROMPT] = prompt
        kept.append("system_instruction")
    if (temperature := _temperature(source.get("temperature"))) is not None:
        options[CONF_TEMPERATURE] = temperature
        kept.append("temperature")
    if (language := _first_text(source, _LANGUAGE_KEYS)) is not None:
        options[CONF_LANGUAGE] = language.strip()
        kept.append("language")
    return options, kept, replaced


def _api_key(source: Mapping[str, Any]) -> str:
    key = source.get(CONF_API_KEY)
    if not isinstance(key, str) or not key.strip():
        raise MigrationError("the entry has no API key")
    return key.strip()


@callback
def _remove_foreign_registry_entries(hass: HomeAssistant, entry: ConfigEntry) -> int:
    """Drop the other integration's entities and devices: nothing will ever provide them again.

    Left in place they would stay "unavailable" forever and hold entity ids (for example
    ``conversation.gemini_live``) that our new entities would otherwise get.
    """
    ent_reg = er.async_get(hass)
    entities = er.async_entries_for_config_entry(ent_reg, entry.entry_id)
    for entity in entities:
        ent_reg.async_remove(entity.entity_id)
    dev_reg = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(dev_reg, entry.entry_id):
        dev_reg.async_remove_device(device.id)
    return len(entities)


@callback
def _create_foreign_issue(hass: HomeAssistant, entry: ConfigEntry, reason: str) -> None:
    ir.async_create_issue(
        hass,
        DOMAIN,
        foreign_issue_id(entry.entry_id),
        is_fixable=False,
        is_persistent=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_FOREIGN_ENTRY,
        translation_placeholders={"title": entry.title, "reason": reason},
        data={"entry_id": entry.entry_id},
    )


async def async_migrate_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Bring ``entry`` to VERSION 2; False (with a repair issue) when it cannot be done."""
    if entry.version > CURRENT_VERSION:
        return False  # written by a newer version of this integration (HA refuses it earlier)
    if entry.version == CURRENT_VERSION:
        return True  # a newer minor version is compatible
    LOGGER.debug("Migrating config entry %s from version %s", entry.title, entry.version)
    try:
        source: Mapping[str, Any] = {**entry.data, **entry.options}
        api_key = _api_key(source)
        options, kept, replaced = agent_from_v1(source)
    except (MigrationError, TypeError, ValueError, AttributeError) as err:
        LOGGER.error(
            "Cannot migrate config entry %s (version %s) left by another Gemini Live "
            "integration: %s. Remove it and add the integration again",
            entry.title,
            entry.version,
            err,
        )
        _create_foreign_issue(hass, entry, str(err))
        return False

    from_version = entry.version
    removed = _remove_foreign_registry_entries(hass, entry)
    hass.config_entries.async_update_entry(
        entry,
        data={CONF_API_KEY: api_key, CONF_ENDPOINT: ""},
        options={},
        version=CURRENT_VERSION,
        minor_version=CURRENT_MINOR_VERSION,
    )
    hass.config_entries.async_add_subentry(
        entry,
        ConfigSubentry(
            data=MappingProxyType(options),
            subentry_type=SUBENTRY_AGENT,
            title=DEFAULT_AGENT_NAME,
            unique_id=None,
        ),
    )
    ir.async_delete_issue(hass, DOMAIN, foreign_issue_id(entry.entry_id))
    taken = {CONF_API_KEY, *kept, *replaced}
    if "system_instruction" in kept:
        taken.update(_PROMPT_KEYS)
    if "language" in kept:
        taken.update(_LANGUAGE_KEYS)
    LOGGER.info(
        "Migrated config entry %s of another Gemini Live integration from version %s to %s: "
        "API key kept; one agent (model %s, voice %s); taken over: %s; replaced by defaults: "
        "%s; dropped: %s; %d stale entities removed",
        entry.title,
        from_version,
        CURRENT_VERSION,
        options[CONF_MODEL],
        options[CONF_VOICE],
        ", ".join(kept) or "nothing",
        ", ".join(replaced) or "nothing",
        ", ".join(sorted(str(k) for k in source if k not in taken)) or "nothing",
        removed,
    )
    return True
