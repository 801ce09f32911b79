"""The conversation agent in a real Home Assistant against the Live emulator."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from homeassistant.components import conversation
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import intent
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.gemini_live.const import (
    CONF_MODEL,
    CONF_SUCCESS_SCHEDULING,
    CONF_TOOL_BEHAVIOR,
)
from custom_components.gemini_live.options import trim_system_prompt
from live_emulator import LiveEmulator

from .conftest import agent_data, wait_for
from .ha_compat import chat_content

AGENT = "conversation.gemini_live"


async def converse(
    hass: HomeAssistant, text: str, conversation_id: str | None = None
) -> conversation.ConversationResult:
    """One turn through HA's conversation API."""
    return await conversation.async_converse(
        hass, text, conversation_id, Context(), agent_id=AGENT, language="en"
    )


def speech(result: conversation.ConversationResult) -> str:
    """Plain speech of a result."""
    return str(result.response.speech["plain"]["speech"])


# ------------------------------------------------------------------------------------------------


async def test_turn_on_kitchen_light(
    hass: HomeAssistant,
    kitchen_light: str,
    setup_integration: MockConfigEntry,
    emulator: LiveEmulator,
) -> None:
    """Text -> toolCall -> the real light turns on -> reply text and tool call in the chat log."""
    result = await converse(hass, "turn on the kitchen light")
    assert result.response.response_type is intent.IntentResponseType.ACTION_DONE
    assert hass.states.get(kitchen_light).state == "on"
    assert speech(result)

    content = chat_content(hass, result.conversation_id)
    calls = [c for c in content if c.role == "assistant" and c.tool_calls]
    assert calls[0].tool_calls[0].tool_name == "intent__HassTurnOn"
    assert calls[0].tool_calls[0].tool_args == {"name": "kitchen light"}
    results = [c for c in content if c.role == "tool_result"]
    assert results[0].tool_name == "intent__HassTurnOn"
    assert not results[0].result.error
    # Default model (3.8) has async calls: the action was NON_BLOCKING, success SILENT.
    await wait_for(lambda: emulator.connections[-1].tool_responses)
    record = emulator.connections[-1].tool_responses[0]
    assert record.behavior == "NON_BLOCKING"
    assert record.scheduling == "SILENT"
    # The setup declared HA's tools with Gemini-valid names and our system prompt.
    setup = emulator.connections[-1].setup
    assert setup is not None
    names = [f["name"] for f in setup["tools"][0]["functionDeclarations"]]
    assert "intent__HassTurnOn" in names
    assert "Home Assistant" in setup["systemInstruction"]["parts"][0]["text"]


@pytest.mark.parametrize("scheduling", ["SILENT", "WHEN_IDLE", "INTERRUPT"])
async def test_non_blocking_success_scheduling(
    hass: HomeAssistant,
    kitchen_light: str,
    mock_config_entry: MockConfigEntry,
    emulator: LiveEmulator,
    scheduling: str,
) -> None:
    """Each configured success scheduling reaches the model and is applied as configured."""
    mock_config_entry.add_to_hass(hass)
    subentry = next(iter(mock_config_entry.subentries.values()))
    hass.config_entries.async_update_subentry(
        mock_config_entry, subentry, data=agent_data(**{CONF_SUCCESS_SCHEDULING: scheduling})
    )
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    result = await converse(hass, "turn on the kitchen light")
    assert hass.states.get(kitchen_light).state == "on"
    await wait_for(lambda: emulator.connections[-1].tool_responses)
    record = emulator.connections[-1].tool_responses[0]
    assert record.behavior == "NON_BLOCKING"
    assert record.requested_scheduling == scheduling
    assert record.scheduling == scheduling
    text = speech(result)
    if scheduling == "SILENT":
        assert "kitchen light is now on" not in text.lower()
    else:
        # The result was spoken in a follow-up the agent waited for.
        assert "kitchen light" in text.lower()


async def test_failure_interrupts(
    hass: HomeAssistant, setup_integration: MockConfigEntry, emulator: LiveEmulator
) -> None:
    """A failing action (no such device) is answered as an error with INTERRUPT scheduling."""
    result = await converse(hass, "turn on the garage light")
    await wait_for(lambda: emulator.connections[-1].tool_responses)
    record = emulator.connections[-1].tool_responses[0]
    assert record.scheduling == "INTERRUPT"
    content = chat_content(hass, result.conversation_id)
    [tool_result] = [c for c in content if c.role == "tool_result"]
    assert tool_result.result.error
    assert speech(result)


@pytest.mark.parametrize(
    "agent_options", [agent_data(**{CONF_MODEL: "gemini-3.1-flash-live-preview"})]
)
async def test_blocking_on_synchronous_model(
    hass: HomeAssistant,
    kitchen_light: str,
    setup_integration: MockConfigEntry,
    emulator: LiveEmulator,
) -> None:
    """A model without async calls gets plain (BLOCKING) declarations and no scheduling."""
    result = await converse(hass, "turn on the kitchen light")
    assert hass.states.get(kitchen_light).state == "on"
    setup = emulator.connections[-1].setup
    assert setup is not None
    assert all("behavior" not in f for f in setup["tools"][0]["functionDeclarations"])
    await wait_for(lambda: emulator.connections[-1].tool_responses)
    record = emulator.connections[-1].tool_responses[0]
    assert record.behavior == "BLOCKING"
    assert record.requested_scheduling is None
    assert "kitchen light" in speech(result).lower()


@pytest.mark.parametrize("agent_options", [agent_data(**{CONF_TOOL_BEHAVIOR: "blocking"})])
async def test_policy_blocking(
    hass: HomeAssistant,
    kitchen_light: str,
    setup_integration: MockConfigEntry,
    emulator: LiveEmulator,
) -> None:
    """The per-agent policy can make every call BLOCKING even on an async model."""
    await converse(hass, "turn on the kitchen light")
    await wait_for(lambda: emulator.connections[-1].tool_responses)
    record = emulator.connections[-1].tool_responses[0]
    assert record.behavior == "BLOCKING"
    assert record.requested_scheduling is None


# ------------------------------------------------------------------------------------------------
# Sessions


async def test_multi_turn_memory_and_reuse(
    hass: HomeAssistant, setup_integration: MockConfigEntry, emulator: LiveEmulator
) -> None:
    """Two turns of one conversation share one Live session; the model remembers."""
    first = await converse(hass, "my favourite colour is green")
    connections = len(emulator.connections)
    second = await converse(hass, "what did I ask", first.conversation_id)
    assert len(emulator.connections) == connections  # same Live session
    assert "green" in speech(second).lower()


async def test_concurrent_conversations_are_separate(
    hass: HomeAssistant, setup_integration: MockConfigEntry, emulator: LiveEmulator
) -> None:
    """Two conversations at once get their own sessions and never cross."""
    a1, b1 = await asyncio.gather(
        converse(hass, "my favourite colour is green"), converse(hass, "my favourite colour is red")
    )
    a2, b2 = await asyncio.gather(
        converse(hass, "what did I ask", a1.conversation_id),
        converse(hass, "what did I ask", b1.conversation_id),
    )
    assert "green" in speech(a2).lower()
    assert "red" not in speech(a2).lower()
    assert "red" in speech(b2).lower()
    assert "green" not in speech(b2).lower()


async def test_resume_after_reload(
    hass: HomeAssistant, setup_integration: MockConfigEntry, emulator: LiveEmulator
) -> None:
    """After a reload the next turn resumes the stored handle (context kept)."""
    first = await converse(hass, "my favourite colour is green")
    handles = [h for c in emulator.connections for h in c.handles]
    assert handles
    assert await hass.config_entries.async_reload(setup_integration.entry_id)
    await hass.async_block_till_done()
    second = await converse(hass, "what did I ask", first.conversation_id)
    assert emulator.connections[-1].resumed_from in handles
    assert "green" in speech(second).lower()


async def test_usage_sensors(hass: HomeAssistant, setup_integration: MockConfigEntry) -> None:
    """Usage metadata accumulates in the agent's sensors."""
    await converse(hass, "hello there")
    total = hass.states.get("sensor.gemini_live_total_tokens")
    prompt = hass.states.get("sensor.gemini_live_prompt_tokens")
    response = hass.states.get("sensor.gemini_live_response_tokens")
    assert int(total.state) > 0
    assert int(total.state) == int(prompt.state) + int(response.state)
    before = int(total.state)
    await converse(hass, "hello again")
    assert int(hass.states.get("sensor.gemini_live_total_tokens").state) > before


async def test_session_closed_after_idle(
    hass: HomeAssistant, setup_integration: MockConfigEntry, emulator: LiveEmulator
) -> None:
    """The Live session closes after the idle time."""
    await converse(hass, "hello")
    [agent] = setup_integration.runtime_data.agents.values()
    assert agent.conversations.all()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=301))
    await hass.async_block_till_done()
    assert not agent.conversations.all()
    await emulator.connections[-1].wait_closed()


THINKING_MODEL = agent_data(
    model="gemini-2.5-flash-native-audio-preview-12-2025",
    thinking_budget=512,
    include_thoughts=True,
)


@pytest.mark.parametrize("agent_options", [THINKING_MODEL])
async def test_thinking_content_and_text_modality(
    hass: HomeAssistant, setup_integration: MockConfigEntry, emulator: LiveEmulator
) -> None:
    """With thoughts on, thinking content lands in the chat log; text chat uses TEXT output."""
    result = await converse(hass, "hello there")
    setup = emulator.connections[-1].setup
    assert setup is not None
    assert setup["generationConfig"]["responseModalities"] == ["TEXT"]
    assert setup["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 512,
        "includeThoughts": True,
    }
    content = chat_content(hass, result.conversation_id)
    [reply] = [c for c in content if c.role == "assistant"]
    assert reply.thinking_content
    assert reply.content
    assert speech(result) == reply.content


def test_trim_system_prompt(caplog: pytest.LogCaptureFixture) -> None:
    """An oversized home context is trimmed from its end, with a warning; small ones are kept."""
    head = "You are a voice assistant.\n"
    lines = [f"- light.lamp_{i}: Lamp {i} (off)" for i in range(5000)]
    prompt = head + "\n".join(lines)
    assert trim_system_prompt("short", 1000) == "short"
    trimmed = trim_system_prompt(prompt, 4000)  # budget: 1000 tokens ~ 4000 chars
    assert trimmed.startswith(head)
    assert len(trimmed) <= 4000
    assert trimmed.endswith("(The list above was shortened to fit.)")
    assert "lamp_4999" not in trimmed
    assert "exceeds the budget" in caplog.text
