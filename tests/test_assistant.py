"""A ready assistant per agent, and the repair about assistants that split an agent's bridge."""

from __future__ import annotations

from http import HTTPStatus
import json
from pathlib import Path
import re
from typing import Any

from homeassistant import config_entries
from homeassistant.components.assist_pipeline import (
    Pipeline,
    async_get_pipelines,
    async_update_pipeline,
)
from homeassistant.components.assist_pipeline.pipeline import KEY_ASSIST_PIPELINE
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_API_KEY, CONF_LLM_HASS_API, CONF_NAME, MATCH_ALL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.gemini_live.assistant import CONF_CREATE_ASSISTANT, mixed_issue_id
from custom_components.gemini_live.const import CONF_ENDPOINT, DOMAIN, SUBENTRY_AGENT
from live_emulator import Fault, LiveEmulator

from .conftest import TEST_API_KEY, agent_data

STRINGS = json.loads(
    (Path(__file__).parent.parent / "custom_components" / DOMAIN / "strings.json").read_text()
)


@pytest.fixture
async def assist_pipeline(hass: HomeAssistant) -> None:
    """HA's assist_pipeline (its default "Home Assistant" assistant exists from the start)."""
    assert await async_setup_component(hass, "assist_pipeline", {})


def engines_of(hass: HomeAssistant, entry_id: str, subentry_id: str) -> dict[str, str]:
    """An agent's conversation/stt/tts entity ids, from the entity registry."""
    return {
        e.domain: e.entity_id
        for e in er.async_entries_for_config_entry(er.async_get(hass), entry_id)
        if e.config_subentry_id == subentry_id and e.domain in ("conversation", "stt", "tts")
    }


def by_name(hass: HomeAssistant) -> dict[str, Pipeline]:
    """The assistants by name."""
    return {p.name: p for p in async_get_pipelines(hass)}


def assert_wired(pipeline: Pipeline, engines: dict[str, str], language: str) -> None:
    """``pipeline`` uses the agent's three engines, in ``language``."""
    assert pipeline.conversation_engine == engines["conversation"]
    assert pipeline.stt_engine == engines["stt"]
    assert pipeline.tts_engine == engines["tts"]
    assert pipeline.language == language
    assert pipeline.stt_language == language
    assert pipeline.tts_language == language
    assert pipeline.conversation_language == MATCH_ALL  # the agent speaks every language
    assert pipeline.tts_voice is None  # the agent's own voice


async def add_entry(
    hass: HomeAssistant, emulator: LiveEmulator, **extra: Any
) -> config_entries.ConfigEntry:
    """Add the integration through its config flow (what the UI does)."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert CONF_CREATE_ASSISTANT in {str(k) for k in result["data_schema"].schema}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: TEST_API_KEY, CONF_ENDPOINT: emulator.http_url, **extra}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    entry: config_entries.ConfigEntry = result["result"]
    assert CONF_CREATE_ASSISTANT not in entry.data
    return entry


async def add_agent(
    hass: HomeAssistant, entry: config_entries.ConfigEntry, name: str, **agent_step: Any
) -> str:
    """Add an agent through the subentry flow; return its subentry id once the entry reloaded."""
    before = set(entry.subentries)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_AGENT), context={"source": config_entries.SOURCE_USER}
    )
    schema = {str(k): k for k in result["data_schema"].schema}
    assert schema[CONF_CREATE_ASSISTANT].default() is True  # offered, default on
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_NAME: name, CONF_LLM_HASS_API: ["assist"], **agent_step}
    )
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert CONF_CREATE_ASSISTANT not in result["data"]
    await hass.async_block_till_done()  # the entry reloads with the new agent's entities
    [subentry_id] = set(entry.subentries) - before
    return subentry_id


async def test_first_agent_gets_an_assistant_in_the_users_language(
    hass: HomeAssistant, assist_pipeline: None, emulator: LiveEmulator
) -> None:
    """Adding the integration creates "Gemini Live" wired to its agent, in HA's language."""
    await hass.config.async_update(language="de", country="DE")
    issue_events: list[Any] = []
    hass.bus.async_listen(
        ir.EVENT_REPAIRS_ISSUE_REGISTRY_UPDATED, lambda event: issue_events.append(event.data)
    )
    entry = await add_entry(hass, emulator)
    assert entry.state is ConfigEntryState.LOADED
    [subentry_id] = entry.subentries
    engines = engines_of(hass, entry.entry_id, subentry_id)
    assert set(engines) == {"conversation", "stt", "tts"}

    assert set(by_name(hass)) == {"Home Assistant", "Gemini Live"}
    assert_wired(by_name(hass)["Gemini Live"], engines, "de")
    # Never split, not even while it was being created: no issue came and went.
    assert not [e for e in issue_events if e["domain"] == DOMAIN]


async def test_no_assistant_when_declined(
    hass: HomeAssistant, assist_pipeline: None, emulator: LiveEmulator
) -> None:
    """Unticked: no assistant, for the first agent nor for an added one."""
    entry = await add_entry(hass, emulator, **{CONF_CREATE_ASSISTANT: False})
    await add_agent(hass, entry, "Kitchen", **{CONF_CREATE_ASSISTANT: False})
    assert set(by_name(hass)) == {"Home Assistant"}


async def test_added_agent_gets_its_own_assistant(
    hass: HomeAssistant, assist_pipeline: None, emulator: LiveEmulator
) -> None:
    """ "Add agent" creates an assistant named after the new agent, wired to its own entities."""
    entry = await add_entry(hass, emulator)
    [first_id] = entry.subentries
    second_id = await add_agent(hass, entry, "Kitchen")

    pipelines = by_name(hass)
    assert set(pipelines) == {"Home Assistant", "Gemini Live", "Kitchen"}
    second = engines_of(hass, entry.entry_id, second_id)
    assert_wired(pipelines["Kitchen"], second, "en")
    assert_wired(pipelines["Gemini Live"], engines_of(hass, entry.entry_id, first_id), "en")
    assert set(second.values()).isdisjoint(engines_of(hass, entry.entry_id, first_id).values())


async def test_assistant_name_is_unique(
    hass: HomeAssistant, assist_pipeline: None, emulator: LiveEmulator
) -> None:
    """Satellites pick assistants by name: an existing "Kitchen" makes the new one "Kitchen 2"."""
    entry = await add_entry(hass, emulator, **{CONF_CREATE_ASSISTANT: False})
    store = hass.data[KEY_ASSIST_PIPELINE].pipeline_store
    home = by_name(hass)["Home Assistant"].to_json()
    await store.async_create_item(
        {**{k: v for k, v in home.items() if k != "id"}, "name": "Kitchen"}
    )
    subentry_id = await add_agent(hass, entry, "Kitchen")
    assert_wired(by_name(hass)["Kitchen 2"], engines_of(hass, entry.entry_id, subentry_id), "en")


async def test_assistant_created_when_the_entry_loads_later(
    hass: HomeAssistant, assist_pipeline: None, emulator: LiveEmulator
) -> None:
    """The reload after "Add agent" fails: the assistant comes with the next successful setup."""
    entry = await add_entry(hass, emulator, **{CONF_CREATE_ASSISTANT: False})
    emulator.inject(
        Fault(
            "close",
            after_server_messages=0,
            code=1011,
            reason="The service is currently unavailable.",
        )
    )
    before = set(entry.subentries)
    subentry_id = await add_agent(hass, entry, "Kitchen")
    assert subentry_id not in before
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert "Kitchen" not in by_name(hass)

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert_wired(by_name(hass)["Kitchen"], engines_of(hass, entry.entry_id, subentry_id), "en")


# ------------------------------------------------------------------------------------------------
# The "mixed pipeline" repair
# ------------------------------------------------------------------------------------------------


@pytest.fixture
async def two_agents(
    hass: HomeAssistant, assist_pipeline: None, emulator: LiveEmulator
) -> tuple[MockConfigEntry, dict[str, str], dict[str, str]]:
    """An entry with two agents (no assistants): the entry and each agent's engines."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Gemini Live",
        data={CONF_API_KEY: TEST_API_KEY, CONF_ENDPOINT: emulator.http_url},
        version=2,
        minor_version=1,
        subentries_data=[
            {"subentry_type": SUBENTRY_AGENT, "data": agent_data(), "title": t, "unique_id": None}
            for t in ("Gemini Live", "Kitchen")
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    first, second = (engines_of(hass, entry.entry_id, s) for s in entry.subentries)
    return entry, first, second


def issue_of(hass: HomeAssistant, pipeline: Pipeline) -> ir.IssueEntry | None:
    """The repair issue about ``pipeline``, if any."""
    return ir.async_get(hass).async_get_issue(DOMAIN, mixed_issue_id(pipeline.id))


async def create_pipeline(hass: HomeAssistant, **engines: str | None) -> Pipeline:
    """An assistant made in the UI (the store's websocket API does the same)."""
    store = hass.data[KEY_ASSIST_PIPELINE].pipeline_store
    settings: dict[str, Any] = {
        "conversation_engine": "conversation.home_assistant",
        "conversation_language": "en",
        "language": "en",
        "name": "Mine",
        "stt_engine": None,
        "stt_language": None,
        "tts_engine": None,
        "tts_language": None,
        "tts_voice": None,
        "wake_word_entity": None,
        "wake_word_id": None,
    }
    for role, engine in engines.items():
        settings[f"{role}_engine"] = engine
        if role != "conversation":
            settings[f"{role}_language"] = "en" if engine else None
    pipeline: Pipeline = await store.async_create_item(settings)
    return pipeline


def current(hass: HomeAssistant, pipeline: Pipeline) -> Pipeline:
    """``pipeline`` as stored now."""
    return next(p for p in async_get_pipelines(hass) if p.id == pipeline.id)


@pytest.mark.parametrize(
    ("stt", "conversation", "tts"),
    [
        ("first", None, "first"),  # HA's agent between Gemini's STT and TTS
        (None, "first", None),  # Gemini's agent with HA's engines
        (None, None, "first"),  # only Gemini's TTS
        ("first", "first", "second"),  # two agents
        ("second", "first", "first"),
    ],
)
async def test_split_assistant_raises_an_issue(
    hass: HomeAssistant,
    two_agents: tuple[MockConfigEntry, dict[str, str], dict[str, str]],
    stt: str | None,
    conversation: str | None,
    tts: str | None,
) -> None:
    """Any assistant that uses some of an agent's engines but not all three of one agent."""
    _entry, first, second = two_agents
    agents = {"first": first, "second": second}

    def pick(role: str, which: str | None) -> str | None:
        return agents[which][role] if which else None

    engines = {"stt": pick("stt", stt), "tts": pick("tts", tts)}
    if conversation:
        engines["conversation"] = pick("conversation", conversation)
    pipeline = await create_pipeline(hass, **engines)

    issue = issue_of(hass, pipeline)
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.is_fixable
    assert issue.translation_key == "mixed_pipeline"
    placeholders = issue.translation_placeholders or {}
    assert placeholders["pipeline"] == "Mine"
    # The fix uses the agent of the conversation engine, else of the STT / TTS.
    fix_agent = {"first": "Gemini Live", "second": "Kitchen"}[conversation or stt or tts or ""]
    assert placeholders["agent"] == fix_agent


async def test_issue_follows_the_assistant(
    hass: HomeAssistant, two_agents: tuple[MockConfigEntry, dict[str, str], dict[str, str]]
) -> None:
    """Created when the assistant is split, gone once it is whole, or deleted, or Gemini-free."""
    _entry, first, second = two_agents
    store = hass.data[KEY_ASSIST_PIPELINE].pipeline_store
    pipeline = await create_pipeline(hass, stt=first["stt"], tts=second["tts"])
    assert issue_of(hass, pipeline) is not None

    await async_update_pipeline(
        hass,
        current(hass, pipeline),
        conversation_engine=first["conversation"],
        tts_engine=first["tts"],
    )
    assert issue_of(hass, pipeline) is None  # all three of one agent

    await async_update_pipeline(hass, current(hass, pipeline), tts_engine=second["tts"])
    assert issue_of(hass, pipeline) is not None

    await async_update_pipeline(
        hass,
        current(hass, pipeline),
        conversation_engine="conversation.home_assistant",
        stt_engine=None,
        stt_language=None,
        tts_engine=None,
        tts_language=None,
    )
    assert issue_of(hass, pipeline) is None  # no Gemini engine at all

    await async_update_pipeline(
        hass, current(hass, pipeline), tts_engine=second["tts"], tts_language="en"
    )
    assert issue_of(hass, pipeline) is not None
    await store.async_delete_item(pipeline.id)
    assert issue_of(hass, pipeline) is None


async def test_removing_an_agent_updates_the_issue(
    hass: HomeAssistant, two_agents: tuple[MockConfigEntry, dict[str, str], dict[str, str]]
) -> None:
    """The engines' entities go away with their agent: the assistant no longer uses Gemini."""
    entry, _first, second = two_agents
    pipeline = await create_pipeline(hass, tts=second["tts"])
    assert issue_of(hass, pipeline) is not None
    kitchen = next(s for s in entry.subentries.values() if s.title == "Kitchen")
    assert hass.config_entries.async_remove_subentry(entry, kitchen.subentry_id)
    await hass.async_block_till_done()
    assert issue_of(hass, pipeline) is None


async def test_fix_uses_one_agent(
    hass: HomeAssistant,
    two_agents: tuple[MockConfigEntry, dict[str, str], dict[str, str]],
    hass_client: ClientSessionGenerator,
) -> None:
    """The fix flow (as the UI runs it) rewires the assistant to its conversation agent's agent."""
    assert await async_setup_component(hass, "repairs", {})
    _entry, first, second = two_agents
    pipeline = await create_pipeline(
        hass, stt=first["stt"], conversation=second["conversation"], tts=first["tts"]
    )
    client = await hass_client()
    resp = await client.post(
        "/api/repairs/issues/fix",
        json={"handler": DOMAIN, "issue_id": mixed_issue_id(pipeline.id)},
    )
    assert resp.status == HTTPStatus.OK, await resp.text()
    flow = await resp.json()
    assert flow["step_id"] == "confirm"
    assert flow["description_placeholders"]["agent"] == "Kitchen"
    assert flow["description_placeholders"]["stt"] == f"{first['stt']} (Gemini Live)"
    confirm = STRINGS["issues"]["mixed_pipeline"]["fix_flow"]["step"]["confirm"]
    used = set(re.findall(r"{(\w+)}", confirm["title"] + confirm["description"]))
    assert used <= set(flow["description_placeholders"])
    issue = issue_of(hass, pipeline)
    assert issue is not None
    title = STRINGS["issues"]["mixed_pipeline"]["title"]
    assert set(re.findall(r"{(\w+)}", title)) <= set(issue.translation_placeholders or {})
    resp = await client.post(f"/api/repairs/issues/fix/{flow['flow_id']}", json={})
    assert resp.status == HTTPStatus.OK, await resp.text()
    assert (await resp.json())["type"] == "create_entry"

    fixed = current(hass, pipeline)
    assert_wired(fixed, second, "en")
    assert fixed.name == "Mine"
    assert issue_of(hass, pipeline) is None
