"""The Live API as it is today (issue 13), through a real Home Assistant and the emulator."""

from __future__ import annotations

import asyncio
from typing import Any

from homeassistant.components import conversation
from homeassistant.components.assist_pipeline import PipelineEventType
from homeassistant.const import CONF_LLM_HASS_API
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import entity_registry as er, intent, issue_registry as ir, llm
import probatio as vol
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.gemini_live.const import (
    CONF_GOOGLE_SEARCH,
    CONF_MODEL,
    CONF_PRICE_INPUT_AUDIO,
    CONF_PRICE_INPUT_TEXT,
    CONF_PRICE_OUTPUT_AUDIO,
    CONF_PRICE_OUTPUT_TEXT,
    CONF_THINKING_LEVEL,
    CONF_VOCABULARY,
    DEFAULT_PRICES,
    DOMAIN,
)
from custom_components.gemini_live.live.models import DEFAULT_MODEL, MODELS, Status
from custom_components.gemini_live.repairs import model_issue_id
from live_emulator import LiveEmulator, Scenario

from .conftest import agent_data
from .ha_compat import chat_content
from .test_repairs import repairs, start_fix_flow, submit_fix_flow  # noqa: F401
from .voice_helpers import of, run_voice, tone
from .wav_tools import parse_wav

AGENT = "conversation.gemini_live"
EXTENDED = "gemini-3.8-live-extended-thinking"


async def converse(hass: HomeAssistant, text: str) -> conversation.ConversationResult:
    return await conversation.async_converse(
        hass, text, None, Context(), agent_id=AGENT, language="en"
    )


def speech(result: conversation.ConversationResult) -> str:
    return str(result.response.speech["plain"]["speech"])


def sent(emulator: LiveEmulator) -> list[dict[str, Any]]:
    return [m for c in emulator.connections for m in c.sent]


class _SlowTurnOn(llm.Tool):
    """An action that takes 3 s (a slow device), then turns the light on."""

    name = "SlowTurnOn"
    description = "Turns on a device (slowly)"
    parameters = vol.Schema({vol.Required("name"): str})

    async def async_call(
        self, hass: HomeAssistant, tool_input: llm.ToolInput, llm_context: llm.LLMContext
    ) -> llm.ToolResult:
        await asyncio.sleep(3)
        await hass.services.async_call(
            "light", "turn_on", {"entity_id": "light.kitchen_light"}, blocking=True
        )
        return llm.ToolResult({"success": True})


class _SlowAPI(llm.API):
    def __init__(self, hass: HomeAssistant) -> None:
        super().__init__(hass=hass, id="gemini_live_slow", name="Slow devices")

    async def async_get_api_instance(self, llm_context: llm.LLMContext) -> llm.APIInstance:
        return llm.APIInstance(self, "Slow devices.", llm_context, [_SlowTurnOn()])


@pytest.fixture
def slow_api(hass: HomeAssistant) -> str:
    llm.async_register_api(hass, _SlowAPI(hass))
    return "gemini_live_slow"


@pytest.mark.parametrize(
    "agent_options",
    [
        agent_data(
            **{
                CONF_MODEL: EXTENDED,
                CONF_THINKING_LEVEL: "LOW",
                CONF_LLM_HASS_API: ["gemini_live_slow"],
            }
        )
    ],
)
@pytest.mark.usefixtures("slow_api")
async def test_extended_thinking_voice_request_with_a_slow_tool(
    hass: HomeAssistant, kitchen_light: str, pipeline_id: str, emulator: LiveEmulator
) -> None:
    """Filler while the 3 s tool runs (IN_PROGRESS), the answer after its result, then IDLE:
    the voice turn, the satellite's stream and the chat turn stay open until IDLE."""
    emulator.queue_transcripts("turn on the kitchen light")
    events, audio = await run_voice(hass, pipeline_id, tone(0.8))
    assert not of(events, PipelineEventType.ERROR)
    assert hass.states.get(kitchen_light).state == "on"
    # The emulator's side: filler turn IN_PROGRESS, our result, the answer turn IDLE.
    statuses = [
        m["serverContent"].get("interactionStatus")
        for m in sent(emulator)
        if m.get("serverContent", {}).get("turnComplete")
    ]
    assert statuses[-2:] == ["IN_PROGRESS", "IDLE"]
    [response] = emulator.connections[-1].tool_responses
    assert response.status == "applied"
    # The user heard the filler and the answer: the stream carried both turns' audio.
    spoken_s = sum(
        len(part["inlineData"]["data"]) * 3 / 4 / 2 / 24000
        for m in sent(emulator)
        for part in m.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
        if "inlineData" in part
    )
    wav = parse_wav(audio)
    heard_s = len(wav.pcm) / wav.sample_width / wav.rate
    assert heard_s >= spoken_s * 0.95
    [intent_end] = of(events, PipelineEventType.INTENT_END)
    reply = intent_end["intent_output"]["response"]["speech"]["plain"]["speech"]
    assert "one moment" in reply.lower()  # the filler...
    assert "kitchen light" in reply.lower()  # ...and the answer after the tool's result


@pytest.mark.parametrize("agent_options", [agent_data(**{CONF_GOOGLE_SEARCH: True})])
async def test_search_sources_are_shown(
    hass: HomeAssistant, setup_integration: MockConfigEntry, emulator: LiveEmulator
) -> None:
    """Google Search grounding: the answer links its sources in the chat."""
    result = await converse(hass, "search the weather for tomorrow")
    said = speech(result)
    assert "weather.example.com" in said
    [grounding] = [
        m["serverContent"]["groundingMetadata"]
        for m in sent(emulator)
        if "groundingMetadata" in m.get("serverContent", {})
    ]
    for chunk in grounding["groundingChunks"]:
        assert f"[{chunk['web']['title']}]({chunk['web']['uri']})" in said
    last = chat_content(hass, result.conversation_id)[-1]
    assert isinstance(last, conversation.AssistantContent)
    assert grounding["groundingChunks"][0]["web"]["uri"] in str(last.content)
    # ...and in the response's data, for frontends and automations.
    extra = result.response.as_dict()["speech"]["plain"]["extra_data"]
    assert extra == {
        "sources": [
            {"title": c["web"]["title"], "uri": c["web"]["uri"]}
            for c in grounding["groundingChunks"]
        ]
    }


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("GENERATED_CONTENT_SAFETY", "safety filters blocked its reply"),
        ("PROHIBITED_INPUT_CONTENT", "safety filters blocked the request"),
        ("MALFORMED_FUNCTION_CALL", "use a tool in a way that could not be understood"),
        ("RESPONSE_REJECTED", "rejected the reply"),
    ],
)
async def test_abnormal_turn_end_is_a_clear_message(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    emulator: LiveEmulator,
    reason: str,
    message: str,
) -> None:
    """A turn the service ends abnormally with nothing said: a translated message, not silence."""
    emulator.config.scenario = Scenario.from_dict(
        {"turns": [{"match": {"text": "x"}, "steps": [{"end": {"turnCompleteReason": reason}}]}]}
    )
    result = await converse(hass, "x")
    assert result.response.response_type is intent.IntentResponseType.ERROR
    assert message in speech(result)


async def test_modality_sensors_are_disabled_by_default(
    hass: HomeAssistant, setup_integration: MockConfigEntry
) -> None:
    """The totals and the cost show; the split by modality waits until a user enables it."""
    registry = er.async_get(hass)
    for key in ("prompt_tokens", "response_tokens", "total_tokens", "estimated_cost"):
        entry = registry.async_get(f"sensor.gemini_live_{key}")
        assert entry is not None
        assert entry.disabled_by is None
    for key in ("prompt_audio", "prompt_text", "response_audio", "response_text"):
        entry = registry.async_get(f"sensor.gemini_live_{key}_tokens")
        assert entry is not None
        assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION


async def test_usage_sensors_split_by_modality_and_cost(
    hass: HomeAssistant,
    entity_registry_enabled_by_default: None,
    setup_integration: MockConfigEntry,
    emulator: LiveEmulator,
) -> None:
    """Per-turn usage adds up; audio and text tokens apart; the estimated cost follows."""
    for _ in range(2):
        await converse(hass, "hello there")
    await hass.async_block_till_done()
    reports = [m["usageMetadata"] for m in sent(emulator) if "usageMetadata" in m]
    assert len(reports) >= 2

    def total(field: str, modality: str | None = None) -> int:
        if modality is None:
            return sum(int(r.get(field, 0)) for r in reports)
        return sum(
            int(d["tokenCount"])
            for r in reports
            for d in r.get(field, [])
            if d["modality"] == modality
        )

    def state(key: str) -> float:
        value = hass.states.get(f"sensor.gemini_live_{key}")
        assert value is not None
        return float(value.state)

    assert state("prompt_tokens") == total("promptTokenCount")
    assert state("prompt_text_tokens") == total("promptTokensDetails", "TEXT")
    assert state("prompt_audio_tokens") == total("promptTokensDetails", "AUDIO")
    assert state("response_audio_tokens") == total("responseTokensDetails", "AUDIO")
    assert state("response_text_tokens") == total("responseTokensDetails", "TEXT")
    expected = (
        total("promptTokensDetails", "TEXT") * DEFAULT_PRICES[CONF_PRICE_INPUT_TEXT]
        + total("promptTokensDetails", "AUDIO") * DEFAULT_PRICES[CONF_PRICE_INPUT_AUDIO]
        + (total("responseTokensDetails", "TEXT") + total("thoughtsTokenCount"))
        * DEFAULT_PRICES[CONF_PRICE_OUTPUT_TEXT]
        + total("responseTokensDetails", "AUDIO") * DEFAULT_PRICES[CONF_PRICE_OUTPUT_AUDIO]
    ) / 1_000_000
    assert state("estimated_cost") == pytest.approx(expected, abs=1e-6)
    cost = hass.states.get("sensor.gemini_live_estimated_cost")
    assert cost is not None
    assert cost.attributes["unit_of_measurement"] == "USD"


@pytest.mark.parametrize(
    "agent_options", [agent_data(**{CONF_VOCABULARY: ["Ikea Strala", "Bosch Series 8"]})]
)
async def test_vocabulary_is_the_homes_names_and_the_agents_words(
    hass: HomeAssistant, kitchen_light: str, pipeline_id: str, emulator: LiveEmulator
) -> None:
    """The voice session biases its transcription to the exposed names and the extra words."""
    emulator.queue_transcripts("turn on the ikea strawler")
    events, _audio = await run_voice(hass, pipeline_id, tone(0.6))
    [voice] = [c for c in emulator.connections if c.setup and c.received]
    vocabulary = voice.setup["inputAudioTranscription"]["customVocabulary"]
    assert vocabulary[:2] == ["Ikea Strala", "Bosch Series 8"]
    assert "Kitchen Light" in vocabulary
    [stt_end] = of(events, PipelineEventType.STT_END)
    assert stt_end["stt_output"]["text"] == "turn on the Ikea Strala"


PREVIEWS = [m.id for m in MODELS.values() if m.status in (Status.PREVIEW, Status.LEGACY)]


@pytest.mark.parametrize(
    ("model", "agent_options"),
    [(model, agent_data(**{CONF_MODEL: model, CONF_LLM_HASS_API: []})) for model in PREVIEWS],
)
@pytest.mark.usefixtures("repairs")
async def test_retired_preview_leads_to_the_default_model(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    emulator: LiveEmulator,
    hass_client: ClientSessionGenerator,
    model: str,
) -> None:
    """Google retires a preview (1008 not found): the repair moves the agent to the default."""
    emulator.config.retired_models = frozenset({model})
    result = await converse(hass, "hello")
    assert result.response.response_type is intent.IntentResponseType.ERROR
    [subentry_id] = setup_integration.subentries
    issue = ir.async_get(hass).async_get_issue(DOMAIN, model_issue_id(subentry_id))
    assert issue is not None
    assert issue.is_fixable
    client = await hass_client()
    flow = await start_fix_flow(client, DOMAIN, issue.issue_id)
    result = await submit_fix_flow(client, flow["flow_id"], {})
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()
    assert setup_integration.subentries[subentry_id].data[CONF_MODEL] == DEFAULT_MODEL
