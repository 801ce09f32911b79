"""Fixtures for the emulator tests (independent of Home Assistant)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable, Iterator
import json
from typing import Any

from google.genai import _live_converters, types
import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from live_emulator import EmulatorConfig, LiveEmulator

from ..without_ha import (  # noqa: F401 - autouse fixtures
    _sockets,
    auto_enable_custom_integrations,
    setup_homeassistant,
)

API_KEY = "test-key"
MODEL_38 = "gemini-3.8-live"
MODEL_31 = "gemini-3.1-flash-live-preview"
MODEL_25 = "gemini-2.5-flash-native-audio-preview-12-2025"
MODEL_38X = "gemini-3.8-live-extended-thinking"
MODEL_RECORDED = "gemini-live-2.5-flash-preview"  # the model of the recorded transcripts


ENUM_VALUES: dict[str, frozenset[str]] = {
    "modality": frozenset(m.value for m in types.MediaModality),
    "turnCompleteReason": frozenset(r.value for r in types.TurnCompleteReason),
    "voice_activity_type": frozenset(v.value for v in types.VoiceActivityType),
    "interactionStatus": frozenset(v.value for v in types.InteractionStatus),
    "vadSignalType": frozenset(v.value for v in types.VadSignalType),
    "urlRetrievalStatus": frozenset(v.value for v in types.UrlRetrievalStatus),
    "outcome": frozenset(v.value for v in types.Outcome),
    "language": frozenset(v.value for v in types.Language),
}
# What the SDK's Gemini API converter reads of a voiceActivity message (wire "type").
VOICE_ACTIVITY_WIRE_KEYS = frozenset({"type", "audioOffset"})


def check_enums(node: Any) -> None:
    """Fail on an invalid enum string (the SDK only warns about those)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ENUM_VALUES:
                assert value in ENUM_VALUES[key], f"bad {key} {value!r}"
            check_enums(value)
    elif isinstance(node, list):
        for item in node:
            check_enums(item)


def sdk_view(frame: dict[str, Any]) -> dict[str, Any]:
    """The frame as google-genai's receive() sees it (its Gemini API converter applied).

    The converter copies the keys it knows and silently drops the rest, so nothing may be
    dropped: every top-level key must survive, and voiceActivity may hold only what it reads.
    """
    converted: dict[str, Any] = _live_converters._LiveServerMessage_from_mldev(frame)
    assert len(converted) == len(frame), f"the SDK would drop part of {frame}"
    if "voiceActivity" in frame:
        assert set(frame["voiceActivity"]) <= VOICE_ACTIVITY_WIRE_KEYS, frame
    return converted


def assert_conformant(frame: dict[str, Any]) -> None:
    """The frame validates as a LiveServerMessage (extra fields forbidden) with valid enums."""
    converted = sdk_view(frame)
    types.LiveServerMessage.model_validate(converted)
    check_enums(converted)


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., LiveEmulator]]:
    """Build (not start) emulators with fast test defaults overridable by keyword.

    After the test, every frame any of them sent is checked against the SDK's types.
    """
    made: list[LiveEmulator] = []

    def factory(**kwargs: Any) -> LiveEmulator:
        defaults: dict[str, Any] = {"api_keys": frozenset({API_KEY}), "pace": 0.0}
        defaults.update(kwargs)
        emulator = LiveEmulator(EmulatorConfig(**defaults))
        made.append(emulator)
        return emulator

    yield factory
    for emulator in made:
        for record in emulator.connections:
            for frame in record.sent:
                assert_conformant(frame)


@pytest.fixture
async def emu(make_emulator: Callable[..., LiveEmulator]) -> AsyncIterator[LiveEmulator]:
    """A started emulator with default test settings."""
    async with make_emulator() as emulator:
        yield emulator


def ws_path(version: str = "v1beta", method: str = "BidiGenerateContent") -> str:
    """The websocket path of an endpoint."""
    return f"/ws/google.ai.generativelanguage.{version}.GenerativeService.{method}"


async def open_raw(
    emulator: LiveEmulator,
    *,
    key: str | None = API_KEY,
    version: str = "v1beta",
    method: str = "BidiGenerateContent",
    headers: dict[str, str] | None = None,
    query: str = "",
    max_size: int | None = 2**20,
) -> ClientConnection:
    """Open a plain websocket to the emulator."""
    hdrs = dict(headers or {})
    if key is not None:
        hdrs["x-goog-api-key"] = key
    url = emulator.ws_url + ws_path(version, method) + query
    return await connect(url, additional_headers=hdrs, max_size=max_size)


async def send(ws: ClientConnection, msg: dict[str, Any]) -> None:
    """Send a client message as text JSON (like the SDK)."""
    await ws.send(json.dumps(msg))


async def recv(ws: ClientConnection) -> dict[str, Any]:
    """Receive one server message and decode it."""
    data = await ws.recv()
    assert isinstance(data, bytes), "the server sends binary frames"
    parsed: dict[str, Any] = json.loads(data)
    return parsed


async def setup_session(
    emulator: LiveEmulator, setup: dict[str, Any], **kwargs: Any
) -> ClientConnection:
    """Connect, send setup, and check setupComplete."""
    ws = await open_raw(emulator, **kwargs)
    await send(ws, {"setup": setup})
    assert_setup_complete(await recv(ws))
    return ws


def assert_setup_complete(msg: dict[str, Any]) -> None:
    """The message is a setupComplete (with a sessionId on the models that send one)."""
    assert list(msg) == ["setupComplete"], msg
    assert set(msg["setupComplete"]) <= {"sessionId"}


async def recv_until(
    ws: ClientConnection, pred: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """Receive messages until one satisfies ``pred``; return all of them."""
    out: list[dict[str, Any]] = []
    while True:
        msg = await recv(ws)
        out.append(msg)
        if pred(msg):
            return out


def is_turn_complete(msg: dict[str, Any]) -> bool:
    """Whether a message ends a turn."""
    return bool(msg.get("serverContent", {}).get("turnComplete"))


async def recv_turn(ws: ClientConnection) -> list[dict[str, Any]]:
    """Receive through the next turnComplete."""
    return await recv_until(ws, is_turn_complete)


def tone(ms: int, *, dbfs: float = -10.0, rate: int = 16000, freq: float = 440.0) -> bytes:
    """A sine tone at ``dbfs`` RMS as PCM16LE."""
    n = rate * ms // 1000
    amp = 10 ** (dbfs / 20) * 32768 * np.sqrt(2)
    t = np.arange(n) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def silence(ms: int, rate: int = 16000) -> bytes:
    """Digital silence as PCM16LE."""
    return b"\x00\x00" * (rate * ms // 1000)


def audio_msg(pcm: bytes, rate: int = 16000, *, urlsafe: bool = False) -> dict[str, Any]:
    """A realtimeInput audio message."""
    enc = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return {
        "realtimeInput": {
            "audio": {"data": enc(pcm).decode(), "mimeType": f"audio/pcm;rate={rate}"}
        }
    }


async def send_audio(ws: ClientConnection, pcm: bytes, *, chunk_ms: int = 100) -> None:
    """Stream PCM16 16 kHz audio in chunks."""
    step = 16000 * chunk_ms // 1000 * 2
    for i in range(0, len(pcm), step):
        await send(ws, audio_msg(pcm[i : i + step]))


async def until_closed(
    ws: ClientConnection, within: float = 20.0
) -> tuple[list[dict[str, Any]], ConnectionClosed]:
    """Receive until the connection closes; return the messages and the closing exception."""
    msgs: list[dict[str, Any]] = []
    async with asyncio.timeout(within):
        while True:
            try:
                msgs.append(await recv(ws))
            except ConnectionClosed as err:
                return msgs, err
