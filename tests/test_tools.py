"""Bad calls from the model, failing and slow tools, cancellation (scripted emulator)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
import io
from typing import Any

from homeassistant.components.camera import Camera
from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.const import CONF_LLM_HASS_API
from homeassistant.core import HomeAssistant
from homeassistant.helpers import llm
from homeassistant.setup import async_setup_component
from PIL import Image
import probatio as vol
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockPlatform,
    mock_platform,
)

from live_emulator import EmulatorConfig, LiveEmulator, Scenario

from .conftest import TEST_API_KEY, agent_data, wait_for
from .test_conversation import chat_content, converse, speech


class _SlowTool(llm.Tool):
    name = "SlowJob"
    description = "Runs for a long time"
    parameters = vol.Schema({vol.Required("name"): str})

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    async def async_call(
        self, hass: HomeAssistant, tool_input: llm.ToolInput, llm_context: llm.LLMContext
    ) -> llm.ToolResult:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return llm.ToolResult({"done": True})  # pragma: no cover


class _RaisingTool(llm.Tool):
    name = "Explode"
    description = "Always fails"
    parameters = vol.Schema({vol.Required("count"): int})

    async def async_call(
        self, hass: HomeAssistant, tool_input: llm.ToolInput, llm_context: llm.LLMContext
    ) -> llm.ToolResult:
        raise RuntimeError("boom")


class _TestAPI(llm.API):
    def __init__(self, hass: HomeAssistant, tools: list[llm.Tool]) -> None:
        super().__init__(hass=hass, id="gemini_live_test", name="Test API")
        self._tools = tools

    async def async_get_api_instance(self, llm_context: llm.LLMContext) -> llm.APIInstance:
        return llm.APIInstance(self, "Test tools.", llm_context, self._tools)


TURNS = {
    t["match"]["text"]: t
    for t in [
        {
            "match": {"text": "hallucinate"},
            "steps": [
                {"tool_call": {"name": "launch_rockets", "args": {}, "wait_for_response": True}},
                {"say_result": True},
            ],
        },
        # Explode is an action: NON_BLOCKING on the default model, so the model talks on and
        # its failure comes back as an INTERRUPT follow-up.
        {
            "match": {"text": "bad args"},
            "steps": [
                {"tool_call": {"name": "Explode", "args": {"count": "many"}}},
                {"say": "Let me try."},
            ],
        },
        {
            "match": {"text": "explode"},
            "steps": [
                {"tool_call": {"name": "Explode", "args": {"count": 3}}},
                {"say": "Let me try."},
            ],
        },
        {
            "match": {"text": "slow job"},
            "steps": [
                {
                    "tool_call": {
                        "name": "SlowJob",
                        "args": {"name": "x"},
                        "wait_for_response": False,
                    }
                },
                {"say": "Working on it, this will take a while."},
                {"delay": 30},
            ],
        },
        {
            "match": {"text": "front door"},
            "steps": [
                {
                    "tool_call": {
                        "name": "look_at_camera",
                        "args": {"camera": "camera.front_door"},
                        "wait_for_response": True,
                    }
                },
                {"say": "I see a parcel at the front door."},
            ],
        },
    ]
}


@pytest.fixture
def emulator_config(request: pytest.FixtureRequest) -> EmulatorConfig:
    """The emulator plays the scripted turn named by the test's ``scripted`` marker."""
    marker = request.node.get_closest_marker("scripted")
    assert marker is not None, "tests in this module name their scripted turn"
    return EmulatorConfig(
        api_keys=frozenset({TEST_API_KEY}),
        pace=0.0,
        scenario=Scenario.from_dict({"turns": [TURNS[marker.args[0]]]}),
    )


@pytest.fixture
def slow_tool() -> _SlowTool:
    """The slow tool instance."""
    return _SlowTool()


@pytest.fixture
async def test_api(hass: HomeAssistant, slow_tool: _SlowTool) -> str:
    """Register the test LLM API."""
    llm.async_register_api(hass, _TestAPI(hass, [slow_tool, _RaisingTool()]))
    return "gemini_live_test"


@pytest.fixture
def agent_options() -> dict[str, Any]:
    """Assist plus the test API."""
    return agent_data(**{CONF_LLM_HASS_API: [llm.LLM_API_ASSIST, "gemini_live_test"]})


@pytest.mark.parametrize(
    ("text", "error"),
    [
        pytest.param("hallucinate", "UnknownTool", marks=pytest.mark.scripted("hallucinate")),
        pytest.param("bad args", "InvalidArguments", marks=pytest.mark.scripted("bad args")),
        pytest.param("explode", "RuntimeError", marks=pytest.mark.scripted("explode")),
    ],
)
@pytest.mark.usefixtures("test_api", "setup_integration")
async def test_bad_calls_answer_errors(
    hass: HomeAssistant, emulator: LiveEmulator, text: str, error: str
) -> None:
    """Unknown names, invalid arguments and raising tools become error responses, not crashes."""
    result = await converse(hass, text)
    await wait_for(lambda: emulator.connections[-1].tool_responses)
    record = emulator.connections[-1].tool_responses[0]
    assert record.response["error"] == error
    assert record.response["error_text"]
    content = chat_content(hass, result.conversation_id)
    [tool_result] = [c for c in content if c.role == "tool_result"]
    assert tool_result.result.error
    assert speech(result)


@pytest.mark.scripted("slow job")
async def test_cancellation_mid_tool(
    hass: HomeAssistant,
    test_api: str,
    slow_tool: _SlowTool,
    setup_integration: MockConfigEntry,
    emulator: LiveEmulator,
) -> None:
    """toolCallCancellation cancels the running HA task and nothing is reported for it."""
    turn = hass.async_create_task(converse(hass, "run the slow job"))
    async with asyncio.timeout(10):
        await slow_tool.started.wait()
    [agent] = setup_integration.runtime_data.agents.values()
    [live] = agent.conversations.all()
    await live.client.send_realtime_text("never mind")  # user speaks: interruption
    async with asyncio.timeout(10):
        result = await turn
    assert slow_tool.cancelled
    assert emulator.connections[-1].tool_responses == []
    content = chat_content(hass, result.conversation_id)
    [tool_result] = [c for c in content if c.role == "tool_result"]
    assert tool_result.result.data == {"error": "Cancelled"}


def _jpeg() -> bytes:
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    out = io.BytesIO()
    image.save(out, format="JPEG")
    return out.getvalue()


class _FrontDoor(Camera):
    _attr_name = "Front door"
    _attr_unique_id = "front_door"

    def __init__(self) -> None:
        super().__init__()
        self.requested: list[int | None] = []

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes:
        self.requested.append(width)
        return _jpeg()


@pytest.mark.scripted("front door")
@pytest.mark.usefixtures("test_api")
async def test_look_at_camera_sends_a_frame(
    hass: HomeAssistant, setup_integration_with_camera: _FrontDoor, emulator: LiveEmulator
) -> None:
    """look_at_camera sends the exposed camera's JPEG as a realtime video frame."""
    result = await converse(hass, "what is at the front door")
    setup = emulator.connections[-1].setup
    assert setup is not None
    look = next(
        f for f in setup["tools"][0]["functionDeclarations"] if f["name"] == "look_at_camera"
    )
    assert look["parameters"]["properties"]["camera"]["enum"] == ["camera.front_door"]
    await wait_for(lambda: emulator.connections[-1].video_frames == 1)
    frames = [
        f["realtimeInput"]["video"]
        for f in emulator.connections[-1].received
        if "video" in f.get("realtimeInput", {})
    ]
    assert frames[0]["mimeType"] == "image/jpeg"
    assert base64.b64decode(frames[0]["data"]).startswith(b"\xff\xd8")
    assert setup_integration_with_camera.requested == [768]  # default media resolution
    assert "parcel" in speech(result)
    content = chat_content(hass, result.conversation_id)
    [tool_result] = [c for c in content if c.role == "tool_result"]
    assert tool_result.tool_name == "look_at_camera"
    assert tool_result.result.data["success"] is True


@pytest.fixture
async def setup_integration_with_camera(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> AsyncIterator[_FrontDoor]:
    """A real camera entity (test platform) exposed to Assist, then our entry."""
    camera_entity = _FrontDoor()

    async def _setup_platform(
        hass: HomeAssistant, config: Any, add_entities: Any, discovery_info: Any = None
    ) -> None:
        add_entities([camera_entity])

    mock_platform(hass, "test.camera", MockPlatform(async_setup_platform=_setup_platform))
    assert await async_setup_component(hass, "camera", {"camera": {"platform": "test"}})
    await hass.async_block_till_done()
    async_expose_entity(hass, "conversation", "camera.front_door", True)
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    yield camera_entity
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
