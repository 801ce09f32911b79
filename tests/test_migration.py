"""Migration of a VERSION 1 entry left by another `gemini_live` integration."""

from __future__ import annotations

import logging
from typing import Any

from homeassistant.components import conversation
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_API_KEY, CONF_LLM_HASS_API, CONF_PROMPT
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
    llm,
)
from homeassistant.loader import async_get_integration
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.gemini_live.const import (
    CONF_ENDPOINT,
    CONF_LANGUAGE,
    CONF_MODEL,
    CONF_TEMPERATURE,
    CONF_VOICE,
    DEFAULT_AGENT_NAME,
    DEFAULT_PROMPT,
    DOMAIN,
    RECOMMENDED_AGENT_OPTIONS,
    SUBENTRY_AGENT,
)
from custom_components.gemini_live.live.messages import DEFAULT_VOICE
from custom_components.gemini_live.live.models import DEFAULT_MODEL
from custom_components.gemini_live.migration import foreign_issue_id
from live_emulator import LiveEmulator

from .conftest import TEST_API_KEY, wait_for

NATIVE_AUDIO = "gemini-2.5-flash-native-audio-preview-12-2025"


@pytest.fixture(autouse=True)
async def load_flow_handler(hass: HomeAssistant) -> None:
    """HA migrates through the domain's flow handler: load it as setup would."""
    integration = await async_get_integration(hass, DOMAIN)
    await integration.async_get_platform("config_flow")


def foreign_entry(data: dict[str, Any], **kwargs: Any) -> MockConfigEntry:
    """A VERSION 1 entry as the other integration stored it."""
    return MockConfigEntry(
        domain=DOMAIN, title="My Gemini", data=data, version=1, minor_version=1, **kwargs
    )


def only_agent(entry: MockConfigEntry) -> dict[str, Any]:
    """Data of the entry's single agent subentry."""
    [subentry] = entry.subentries.values()
    assert subentry.subentry_type == SUBENTRY_AGENT
    assert subentry.title == DEFAULT_AGENT_NAME
    return dict(subentry.data)


async def test_migrates_what_maps(hass: HomeAssistant, caplog: pytest.LogCaptureFixture) -> None:
    """Key kept, endpoint empty, one agent from model/voice/instruction/temperature/language."""
    entry = foreign_entry(
        {
            CONF_API_KEY: TEST_API_KEY,
            "model": f"models/{NATIVE_AUDIO}",
            "voice": "kore",
            "system_instruction": "You are a pirate.",
            "temperature": 0.7,
            "language": "de-DE",
            "enable_video": True,
        }
    )
    entry.add_to_hass(hass)
    caplog.set_level(logging.INFO)

    assert await entry.async_migrate(hass)

    assert entry.version == 2
    assert entry.minor_version == 1
    assert entry.title == "My Gemini"
    assert dict(entry.data) == {CONF_API_KEY: TEST_API_KEY, CONF_ENDPOINT: ""}
    assert dict(entry.options) == {}
    assert only_agent(entry) == {
        **RECOMMENDED_AGENT_OPTIONS,
        CONF_MODEL: NATIVE_AUDIO,
        CONF_VOICE: "Kore",
        CONF_PROMPT: "You are a pirate.",
        CONF_TEMPERATURE: 0.7,
        CONF_LANGUAGE: "de-DE",
        CONF_LLM_HASS_API: [llm.LLM_API_ASSIST],
    }
    assert "Migrated config entry My Gemini" in caplog.text
    assert "enable_video" in caplog.text  # reported as dropped
    assert TEST_API_KEY not in caplog.text
    assert not ir.async_get(hass).async_get_issue(DOMAIN, foreign_issue_id(entry.entry_id))


async def test_unknown_model_and_voice_fall_back(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    """A retired model and an unknown voice become our defaults; options override data."""
    entry = foreign_entry(
        {CONF_API_KEY: TEST_API_KEY, "model": "gemini-2.0-flash-live-001"},
        options={"voice": "Robot", "temperature": "hot", "system_instruction": ""},
    )
    entry.add_to_hass(hass)
    caplog.set_level(logging.INFO)

    assert await entry.async_migrate(hass)

    agent = only_agent(entry)
    assert agent[CONF_MODEL] == DEFAULT_MODEL
    assert agent[CONF_VOICE] == DEFAULT_VOICE
    assert agent[CONF_PROMPT] == DEFAULT_PROMPT
    assert CONF_TEMPERATURE not in agent
    assert "replaced by defaults: model, voice" in caplog.text
    assert TEST_API_KEY not in caplog.text


async def test_foreign_entities_are_removed(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """The other integration's registry entries go (they would squat our entity ids)."""
    entry = foreign_entry({CONF_API_KEY: TEST_API_KEY})
    entry.add_to_hass(hass)
    old = entity_registry.async_get_or_create(
        "conversation",
        DOMAIN,
        entry.entry_id,
        config_entry=entry,
        suggested_object_id="gemini_live",
    )
    assert old.entity_id == "conversation.gemini_live"
    device = device_registry.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, "foreign-device")}
    )

    assert await entry.async_migrate(hass)

    assert entity_registry.async_get(old.entity_id) is None
    assert device_registry.async_get(device.id) is None


@pytest.mark.parametrize(
    "data",
    [
        {"model": "gemini-3.8-live", "voice": "Puck"},
        {CONF_API_KEY: "", "model": "gemini-3.8-live"},
        {CONF_API_KEY: 12345},
        {CONF_API_KEY: ["not", "a", "key"]},
    ],
)
async def test_unmigratable_entry_raises_issue(
    hass: HomeAssistant, data: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """No usable key: setup stops with a migration error and a repair issue, nothing crashes."""
    entry = foreign_entry(data)
    entry.add_to_hass(hass)

    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.MIGRATION_ERROR
    assert entry.version == 1
    issue = ir.async_get(hass).async_get_issue(DOMAIN, foreign_issue_id(entry.entry_id))
    assert issue is not None
    assert issue.translation_key == "foreign_entry"
    assert issue.severity is ir.IssueSeverity.ERROR
    assert not issue.is_fixable
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["title"] == "My Gemini"
    assert "Cannot migrate config entry My Gemini" in caplog.text

    # Removing the entry (what the issue asks for) removes the issue too.
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert not ir.async_get(hass).async_get_issue(DOMAIN, foreign_issue_id(entry.entry_id))


async def test_migrated_entry_sets_up_and_converses(
    hass: HomeAssistant, emulator: LiveEmulator
) -> None:
    """After migration the entry loads like one of ours and its agent answers."""
    entry = foreign_entry(
        {
            CONF_API_KEY: TEST_API_KEY,
            "model": "gemini-3.8-live",
            "voice": "Charon",
            "system_instruction": "Answer like a butler.",
        }
    )
    entry.add_to_hass(hass)
    assert await entry.async_migrate(hass)
    # Point the migrated entry at the emulator instead of Google's service.
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, CONF_ENDPOINT: emulator.http_url}
    )

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

    result = await conversation.async_converse(
        hass, "hello", None, Context(), agent_id="conversation.gemini_live", language="en"
    )
    assert result.response.speech["plain"]["speech"]
    setup = emulator.connections[-1].setup
    assert setup is not None
    assert "Answer like a butler." in setup["systemInstruction"]["parts"][0]["text"]
    voice = setup["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]
    assert voice["voiceName"] == "Charon"

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_current_version_is_untouched(hass: HomeAssistant) -> None:
    """A VERSION 2 entry (newer minor too) needs nothing."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        data={CONF_API_KEY: TEST_API_KEY, CONF_ENDPOINT: ""},
        version=2,
        minor_version=2,
    )
    entry.add_to_hass(hass)
    assert await entry.async_migrate(hass)
    assert entry.version == 2
    assert dict(entry.data) == {CONF_API_KEY: TEST_API_KEY, CONF_ENDPOINT: ""}


async def test_removing_an_entry_deletes_its_stored_handles(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    """async_remove_entry (shared with the foreign-entry issue) also drops the handle store."""
    entry = setup_integration
    await conversation.async_converse(
        hass, "hello", None, Context(), agent_id="conversation.gemini_live", language="en"
    )
    # The handle comes after the turn's end (sessionResumptionUpdate follows turnComplete).
    await wait_for(entry.runtime_data.store.count)
    await entry.runtime_data.store.async_flush()
    key = f"{DOMAIN}.sessions.{entry.entry_id}"
    assert hass_storage[key]["data"]

    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()

    assert key not in hass_storage
