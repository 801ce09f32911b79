"""Shared fixtures: a real Home Assistant (phcc) and the offline Live emulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
import logging
from typing import Any
from unittest.mock import PropertyMock, patch

from homeassistant import block_async_io
from homeassistant.components.assist_pipeline.pipeline import KEY_ASSIST_PIPELINE
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_API_KEY, CONF_LLM_HASS_API, CONF_PROMPT
from homeassistant.core import HomeAssistant
from homeassistant.helpers import frame, llm
from homeassistant.setup import async_setup_component
from homeassistant.util import loop as ha_loop
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

# Import our component before phcc mounts its testing_config, so ours is the
# `custom_components` package HA finds (see ha-internals.md, "phcc testing").
import custom_components.gemini_live  # noqa: F401
from custom_components.gemini_live.const import (
    CONF_ENDPOINT,
    DEFAULT_PROMPT,
    DOMAIN,
    RECOMMENDED_AGENT_OPTIONS,
    SUBENTRY_AGENT,
)
from live_emulator import EmulatorConfig, LiveEmulator

TEST_API_KEY = "AIzaTESTKEY-0123456789abcdefghijklmnopq"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: Any) -> None:
    """Enable loading custom integrations in every test."""


@pytest.fixture(scope="session", autouse=True)
def blocking_call_detector() -> Iterator[None]:
    """Turn on HA's blocking-call detector (``block_async_io``), as a running HA has it.

    phcc leaves it off; with it on, blocking I/O in the event loop is reported (by our code:
    fails the test through ``ha_reports_about_us``; by core: raises). HA tells "in the event
    loop" by the thread it was enabled in; pytest runs synchronous tests in that thread too, so
    the check is narrowed to code that runs while an event loop is running.
    """
    check = ha_loop.raise_for_blocking_call

    def in_a_running_loop(*args: Any, **kwargs: Any) -> None:
        if asyncio._get_running_loop() is not None:  # the cheap, exact check
            check(*args, **kwargs)

    with patch.object(ha_loop, "raise_for_blocking_call", in_a_running_loop):
        block_async_io.enable()
        yield


class _OurReports(logging.Handler):
    """Collects HA's reports (deprecations, blocking calls) that name our integration."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "Detected" in message and (DOMAIN in message or "custom_components/" in message):
            self.reports.append(message.splitlines()[0])


@pytest.fixture(autouse=True)
def ha_reports_about_us() -> Iterator[list[str]]:
    """Fail the test if HA reports our code: a deprecated API or blocking I/O in the loop.

    A repeated blocking call is logged at DEBUG, hence the DEBUG level here.
    Tests that provoke a report on purpose empty the yielded list.
    """
    handler = _OurReports()
    # HA reports each deprecation once per process: forget earlier tests' so each test sees its own.
    getattr(frame, "_REPORTED_INTEGRATIONS", set()).clear()
    loggers = [
        logging.getLogger(name)
        for name in ("homeassistant.helpers.frame", "homeassistant.util.loop")
    ]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler.reports
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert not handler.reports, f"Home Assistant reported our integration: {handler.reports}"


@pytest.fixture(autouse=True)
async def setup_homeassistant(hass: HomeAssistant) -> None:
    """Set up the `homeassistant` core integration (conversation depends on it)."""
    assert await async_setup_component(hass, "homeassistant", {})


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Register entities that are disabled by default as enabled (as HA core's fixture)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Emulator settings: instant replies, one valid key (tests may override)."""
    return EmulatorConfig(api_keys=frozenset({TEST_API_KEY}), pace=0.0)


@pytest.fixture
async def emulator(
    socket_enabled: None, emulator_config: EmulatorConfig
) -> AsyncIterator[LiveEmulator]:
    """The offline Live emulator, on the test's event loop."""
    async with LiveEmulator(emulator_config, host="127.0.0.1", port=0) as emu:
        yield emu


def agent_data(**overrides: Any) -> dict[str, Any]:
    """Agent subentry data: recommended options + Assist."""
    return {
        **RECOMMENDED_AGENT_OPTIONS,
        CONF_PROMPT: DEFAULT_PROMPT,
        CONF_LLM_HASS_API: [llm.LLM_API_ASSIST],
        **overrides,
    }


@pytest.fixture
def agent_options() -> dict[str, Any]:
    """The agent's options (tests override this fixture to change them)."""
    return agent_data()


@pytest.fixture
def mock_config_entry(emulator: LiveEmulator, agent_options: dict[str, Any]) -> MockConfigEntry:
    """A config entry pointing at the emulator, with one agent subentry."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Gemini Live",
        data={CONF_API_KEY: TEST_API_KEY, CONF_ENDPOINT: emulator.http_url},
        version=2,
        minor_version=1,
        subentries_data=[
            {
                "subentry_type": SUBENTRY_AGENT,
                "data": agent_options,
                "title": "Gemini Live",
                "unique_id": None,
            }
        ],
    )


@pytest.fixture
async def setup_integration(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """The entry, set up; unloaded before the emulator stops."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    yield mock_config_entry
    await hass.async_block_till_done()  # e.g. a reload started by reauth/reconfigure
    if mock_config_entry.state is ConfigEntryState.LOADED:
        await hass.config_entries.async_unload(mock_config_entry.entry_id)
        await hass.async_block_till_done()


async def wait_for(predicate: Callable[[], object], within: float = 5.0) -> None:
    """Wait (bounded) until ``predicate()`` is truthy: a condition, never a fixed sleep."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - polls records the emulator keeps
            await asyncio.sleep(0.005)


@pytest.fixture
async def kitchen_light(hass: HomeAssistant) -> str:
    """A real (template, optimistic) light named Kitchen Light, exposed to Assist."""
    assert await async_setup_component(
        hass,
        "template",
        {
            "template": [
                {"light": [{"name": "Kitchen Light", "turn_on": [], "turn_off": []}]},
            ]
        },
    )
    await hass.async_block_till_done()
    assert hass.states.get("light.kitchen_light").state != "on"
    return "light.kitchen_light"


@pytest.fixture
async def pipeline_id(hass: HomeAssistant, setup_integration: MockConfigEntry) -> str:
    """A pipeline using our STT, agent and TTS."""
    assert await async_setup_component(hass, "assist_pipeline", {})
    pipeline = await hass.data[KEY_ASSIST_PIPELINE].pipeline_store.async_create_item(
        {
            "conversation_engine": "conversation.gemini_live",
            "conversation_language": "en",
            "language": "en",
            "name": "Gemini Live",
            "stt_engine": "stt.gemini_live",
            "stt_language": "en",
            "tts_engine": "tts.gemini_live_voice",
            "tts_language": "en",
            "tts_voice": None,
            "wake_word_entity": None,
            "wake_word_id": None,
        }
    )
    return str(pipeline.id)
