"""Our Live client (protocol + asyncio driver) against the offline emulator over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
import math
import struct
from typing import Any

import aiohttp
import pytest
from websockets.exceptions import ConnectionClosed

from custom_components.gemini_live.live import messages as m
from custom_components.gemini_live.live.driver import (
    LiveClient,
    _closed_error,
    check_connection,
    open_websocket,
)
from custom_components.gemini_live.live.endpoint import Endpoint
from custom_components.gemini_live.live.errors import (
    AuthenticationError,
    ConnectionLostError,
    InvalidArgumentError,
    LiveError,
    ModelNotFoundError,
    QuotaExceededError,
    ServerError,
)
from custom_components.gemini_live.live.models import UnsupportedOptionError, check_setup
from custom_components.gemini_live.live.protocol import (
    HandleUpdated,
    ProtocolEvent,
    Reconnected,
    SessionEnded,
    TurnEnded,
)
from custom_components.gemini_live.live.tokens import create_token, token_request
from live_emulator import EmulatorConfig, Fault, LiveEmulator

from .sdk_oracle import validate_client
from .test_models import REFUSED

KEY = "test-key"
MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"
TOOLS = [
    m.FunctionDeclaration(
        "HassTurnOn",
        "Turns on a device",
        {"type": "OBJECT", "properties": {"name": {"type": "STRING"}}},
    )
]
TIMEOUT = 10.0


@pytest.fixture
async def emulator(socket_enabled: None) -> AsyncIterator[LiveEmulator]:
    """A fast emulator (no pacing) with one valid key."""
    async with LiveEmulator(
        EmulatorConfig(api_keys=frozenset({KEY}), pace=0.0), host="127.0.0.1", port=0
    ) as emu:
        yield emu


def endpoint(emu: LiveEmulator, key: str = KEY) -> Endpoint:
    """An endpoint on the emulator."""
    return Endpoint(api_key=key, base_url=emu.http_url)


def setup_cfg(**kw: Any) -> m.SetupConfig:
    """A setup for the default test model."""
    base = m.SetupConfig(
        model=MODEL,
        functions=TOOLS,
        input_transcription=True,
        output_transcription=True,
        vad=m.VadConfig(silence_duration_ms=200),
    )
    return replace(base, **kw)


async def until(session: LiveClient, stop: Callable[[ProtocolEvent], bool]) -> list[ProtocolEvent]:
    """Collect events until ``stop`` matches one (inclusive), with a timeout."""
    out: list[ProtocolEvent] = []
    async with asyncio.timeout(TIMEOUT):
        while True:
            event = await session.receive()
            out.append(event)
            if stop(event):
                return out


def is_turn_complete(event: ProtocolEvent) -> bool:
    """Stop at the end of a model turn."""
    return isinstance(event, TurnEnded)


def text_of(events: list[ProtocolEvent]) -> str:
    """Output transcription (or text) of a reply."""
    return "".join(
        e.text
        for e in events
        if isinstance(e, (m.OutputTranscription, m.TextOut)) and not getattr(e, "thought", False)
    )


def tone(seconds: float, rate: int = 16000, amp: float = 0.3) -> bytes:
    """Speech-loud PCM16 tone."""
    n = int(seconds * rate)
    return struct.pack(
        f"<{n}h", *(int(amp * 32767 * math.sin(2 * math.pi * 220 * i / rate)) for i in range(n))
    )


async def open_raw(ep: Endpoint, frame: dict[str, Any], version: str = "v1beta") -> None:
    """Send a setup frame as given (bypassing our model gate); raise what the server says."""
    ws = await open_websocket(ep, version, None)
    try:
        await ws.send(m.encode(frame), text=True)
        async with asyncio.timeout(TIMEOUT):
            while True:
                try:
                    data = await ws.recv()
                except ConnectionClosed as err:
                    raise _closed_error(err) from err
                if any(isinstance(e, m.SetupComplete) for e in m.parse_server_message(data)):
                    return
    finally:
        await ws.close()


def frames_sent_by_client(emu: LiveEmulator) -> list[dict[str, Any]]:
    """Every frame the emulator received, setups included, across connections."""
    out: list[dict[str, Any]] = []
    for conn in emu.connections:
        assert conn.setup is not None
        out.append({"setup": conn.setup})
        out.extend(conn.received)
    return out


async def test_setup_and_text_turn(emulator: LiveEmulator) -> None:
    """Setup completes; a text turn streams a reply that ends with turnComplete and usage."""
    async with LiveClient(endpoint(emulator), setup_cfg()) as session:
        await session.send_text("hello there")
        events = await until(session, is_turn_complete)
        events += await until(session, lambda e: isinstance(e, m.Usage))
    assert any(isinstance(e, m.AudioOut) and e.rate == 24000 and e.data for e in events)
    assert text_of(events)
    assert any(isinstance(e, m.GenerationComplete) for e in events)
    usage = next(e for e in events if isinstance(e, m.Usage))
    assert usage.total_tokens > 0
    # Everything we sent conforms to the SDK's message types.
    for frame in frames_sent_by_client(emulator):
        validate_client(frame)


async def test_text_modality(emulator: LiveEmulator) -> None:
    """TEXT modality: reply comes as text parts, no audio."""
    cfg = setup_cfg(response_modality=m.Modality.TEXT, output_transcription=False)
    async with LiveClient(endpoint(emulator), cfg) as session:
        await session.send_text("hello there")
        events = await until(session, is_turn_complete)
    assert not any(isinstance(e, m.AudioOut) for e in events)
    assert any(isinstance(e, m.TextOut) and e.text for e in events)


async def test_audio_turn_with_both_transcriptions(emulator: LiveEmulator) -> None:
    """Streamed mic audio -> server VAD ends the utterance -> transcriptions + audio reply."""
    async with LiveClient(endpoint(emulator), setup_cfg()) as session:
        speech = tone(0.6) + bytes(16000 * 2 // 2)  # 0.6 s tone + 0.5 s silence
        for i in range(0, len(speech), 640):
            await session.send_audio(speech[i : i + 640])
        events = await until(session, is_turn_complete)
    assert any(isinstance(e, m.InputTranscription) and e.finished for e in events)
    assert any(isinstance(e, m.OutputTranscription) for e in events)
    assert any(isinstance(e, m.AudioOut) for e in events)


async def test_blocking_tool_call(emulator: LiveEmulator) -> None:
    """BLOCKING: the model waits for our response, then confirms."""
    async with LiveClient(endpoint(emulator), setup_cfg()) as session:
        await session.send_text("turn on the kitchen light")
        events = await until(session, lambda e: isinstance(e, m.ToolCall))
        call = events[-1].calls[0]  # type: ignore[union-attr]
        assert call.name == "HassTurnOn"
        assert call.args == {"name": "kitchen light"}
        assert call.id
        await session.send_tool_results([m.FunctionResult(call.id, call.name, {"success": True})])
        events = await until(session, is_turn_complete)
    assert text_of(events)
    [record] = emulator.connections[0].tool_responses
    assert record.id == call.id
    assert record.status == "applied"


@pytest.mark.parametrize("scheduling", list(m.Scheduling))
async def test_non_blocking_tool_call_scheduling(
    emulator: LiveEmulator, scheduling: m.Scheduling
) -> None:
    """NON_BLOCKING: the model keeps talking; our scheduling value reaches the server."""
    tools = [replace(TOOLS[0], behavior=m.Behavior.NON_BLOCKING)]
    async with LiveClient(endpoint(emulator), setup_cfg(functions=tools)) as session:
        await session.send_text("turn on the kitchen light")
        events = await until(session, lambda e: isinstance(e, m.ToolCall))
        call = events[-1].calls[0]  # type: ignore[union-attr]
        await session.send_tool_results(
            [m.FunctionResult(call.id, call.name, {"success": True}, scheduling)]
        )
        # Drain: the first turn ends; WHEN_IDLE/INTERRUPT add a spoken result.
        events = await until(session, is_turn_complete)
        if scheduling is not m.Scheduling.SILENT and not text_of(events).strip():
            events += await until(session, is_turn_complete)
    record = emulator.connections[0].tool_responses[0]
    assert record.requested_scheduling == scheduling.value
    assert record.scheduling == scheduling.value
    assert record.behavior == "NON_BLOCKING"


async def test_interruption_cancels_pending_call(emulator: LiveEmulator) -> None:
    """User speech during a NON_BLOCKING call's reply -> interrupted + toolCallCancellation."""
    emulator.config.pace = 1.0  # real-time reply so there is something to interrupt
    tools = [replace(TOOLS[0], behavior=m.Behavior.NON_BLOCKING)]
    async with LiveClient(endpoint(emulator), setup_cfg(functions=tools)) as session:
        await session.send_text("turn on the kitchen light")
        await until(session, lambda e: isinstance(e, m.ToolCall))
        await until(session, lambda e: isinstance(e, m.AudioOut))
        for i in range(0, 16000, 640):  # user barges in
            await session.send_audio(tone(0.5)[i : i + 640])
        events = await until(session, lambda e: isinstance(e, m.ToolCallCancellation))
    assert any(isinstance(e, m.Interrupted) for e in events)


async def test_go_away_resumes_with_handle(emulator: LiveEmulator) -> None:
    """goAway -> next connection opened with the newest handle; history survives."""
    handles: list[str] = []
    async with LiveClient(endpoint(emulator), setup_cfg()) as session:
        await session.send_text("my favourite colour is green")
        await until(session, is_turn_complete)
        events = await until(session, lambda e: isinstance(e, HandleUpdated))
        handles += [e.handle for e in events if isinstance(e, HandleUpdated) and e.handle]
        emulator.inject(Fault("go_away", time_left_s=5.0))
        await until(session, lambda e: isinstance(e, Reconnected))
        await session.send_text("what did I ask")
        events = await until(session, is_turn_complete)
    assert handles
    assert len(emulator.connections) == 2
    assert emulator.connections[1].resumed_from in handles
    assert "green" in text_of(events).lower()


async def test_drop_mid_turn_replays_and_loses_nothing(emulator: LiveEmulator) -> None:
    """A TCP drop while the model talks: reconnect with the handle, re-send unconsumed input."""
    async with LiveClient(endpoint(emulator), setup_cfg(), backoff=(0.0, 0.01)) as session:
        await session.send_text("my favourite colour is green")
        await until(session, is_turn_complete)
        await until(session, lambda e: isinstance(e, HandleUpdated))
        emulator.inject(Fault("drop", at_audio_chunk=2))
        await session.send_text("what did I ask")
        events = await until(session, lambda e: isinstance(e, Reconnected))
        assert events[-1].resumed  # type: ignore[union-attr]
        assert events[-1].replayed >= 1  # type: ignore[union-attr]
        events = await until(session, is_turn_complete)
    second = emulator.connections[1]
    assert any("clientContent" in f for f in second.received)
    assert "colour" in text_of(events).lower() or "green" in text_of(events).lower()


@pytest.mark.parametrize(
    ("code", "reason", "error"),
    [
        (1007, "API key not valid. Please pass a valid API key.", AuthenticationError),
        (1007, "Request contains an invalid argument.", InvalidArgumentError),
        (1008, "models/x is not found for API version v1beta", ModelNotFoundError),
        (1011, "You exceeded your current quota, please check your plan.", QuotaExceededError),
    ],
)
async def test_fatal_close_codes(
    emulator: LiveEmulator, code: int, reason: str, error: type[LiveError]
) -> None:
    """Non-retryable closes surface as typed errors from receive(); no reconnect loop."""
    async with LiveClient(endpoint(emulator), setup_cfg()) as session:
        emulator.inject(Fault("close", code=code, reason=reason))
        await session.send_text("hello")
        events = await until(session, lambda e: isinstance(e, SessionEnded))
        ended = events[-1]
        assert isinstance(ended, SessionEnded)
        assert isinstance(ended.error, error)
        assert ended.error.code == code
        assert ended.error.reason == reason
        with pytest.raises(error):
            await session.send_text("again")
    assert len(emulator.connections) == 1


async def test_1011_internal_error_reconnects(emulator: LiveEmulator) -> None:
    """A retryable 1011 (internal error) reconnects and the turn still completes."""
    async with LiveClient(endpoint(emulator), setup_cfg(), backoff=(0.0, 0.01)) as session:
        emulator.inject(Fault("close", code=1011, reason="Internal error encountered.", on_turn=1))
        await session.send_text("hello")
        events = await until(session, is_turn_complete)
    assert any(isinstance(e, Reconnected) for e in events)
    assert len(emulator.connections) == 2


async def test_malformed_frame_is_skipped(emulator: LiveEmulator) -> None:
    """A frame that is not JSON is logged and skipped; the turn completes."""
    async with LiveClient(endpoint(emulator), setup_cfg()) as session:
        emulator.inject(Fault("malformed", on_turn=1))
        await session.send_text("hello")
        events = await until(session, is_turn_complete)
    assert text_of(events)
    assert len(emulator.connections) == 1


async def test_huge_frame_reconnects(emulator: LiveEmulator) -> None:
    """A 20 MB frame exceeds our limit: typed close (1009), then a reconnect; no hang."""
    async with LiveClient(endpoint(emulator), setup_cfg(), backoff=(0.0, 0.01)) as session:
        emulator.inject(Fault("huge", size=20 * 1024 * 1024, on_turn=1))
        await session.send_text("hello")
        events = await until(session, lambda e: isinstance(e, Reconnected))
        assert "1009" in events[-1].reason or "larger" in events[-1].reason  # type: ignore[union-attr]


async def test_slow_server_times_out_cleanly(emulator: LiveEmulator) -> None:
    """A server slower than the caller's patience: the caller's timeout fires, close is clean."""
    session = LiveClient(endpoint(emulator), setup_cfg())
    await session.start()
    emulator.inject(Fault("delay", seconds=5.0))
    await session.send_text("hello")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await session.receive()
    await session.close()
    assert session.closed


async def test_bad_key_and_unknown_model(emulator: LiveEmulator) -> None:
    """Connecting with a bad key or an unknown model raises the typed error."""
    with pytest.raises(AuthenticationError):
        await check_connection(endpoint(emulator, "wrong"), setup_cfg(), ssl_context=None)
    with pytest.raises(AuthenticationError):  # the first connection of a session fails fast
        await LiveClient(endpoint(emulator, "wrong"), setup_cfg()).start()
    with pytest.raises(ModelNotFoundError):
        await open_raw(endpoint(emulator), {"setup": {"model": "models/nope-live"}})


async def test_unsupported_option_reaches_server_as_1007(emulator: LiveEmulator) -> None:
    """Our gate refuses it; sent anyway (bypassing the gate) the emulator closes with 1007."""
    frame = m.build_setup(m.SetupConfig(model="gemini-3.8-live", affective_dialog=True))
    with pytest.raises(InvalidArgumentError) as err:
        await open_raw(endpoint(emulator), frame)
    assert err.value.code == 1007
    assert err.value.reason


async def test_ephemeral_token_constrained_session(emulator: LiveEmulator) -> None:
    """Mint a token locked to a setup, then open a Constrained session with it."""
    locked = m.build_setup(setup_cfg(temperature=0.2))["setup"]
    body = token_request(setup=locked, locked_fields=["generationConfig.temperature"], uses=1)
    async with aiohttp.ClientSession() as http:
        token = await create_token(http, endpoint(emulator), body)
        with pytest.raises(AuthenticationError):
            await create_token(http, endpoint(emulator, "wrong"), body)
    assert token.name.startswith("auth_tokens/")
    assert token.name not in repr(token)
    tok_endpoint = Endpoint(token=token.name, base_url=emulator.http_url)
    async with LiveClient(tok_endpoint, setup_cfg(temperature=0.9)) as session:
        await session.send_text("hello")
        await until(session, is_turn_complete)
    conn = emulator.connections[-1]
    assert conn.effective_setup is not None
    assert conn.effective_setup["generationConfig"]["temperature"] == 0.2
    # uses=1: a second new session with the same token is refused.
    with pytest.raises(AuthenticationError):
        await LiveClient(tok_endpoint, setup_cfg()).start()


async def test_no_task_leaks(emulator: LiveEmulator) -> None:
    """After close, none of the session's tasks remain."""
    before = set(asyncio.all_tasks())
    session = LiveClient(endpoint(emulator), setup_cfg(), backoff=(0.0,))
    await session.start()
    emulator.inject(Fault("drop"))
    await session.send_text("hello")
    await until(session, lambda e: isinstance(e, Reconnected))
    await session.close()
    await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() - before if not t.done()]
    assert not leaked


def test_retryable_errors() -> None:
    """Server trouble and dropped connections are retried; the rest is final."""
    assert issubclass(ServerError, LiveError)
    assert ServerError.retryable
    assert ConnectionLostError.retryable
    assert not AuthenticationError.retryable


@pytest.mark.parametrize(
    ("model", "option", "change"),
    [(model, opt, change) for model, items in REFUSED.items() for opt, change in items],
)
async def test_every_refused_option_is_1007_on_the_wire(
    emulator: LiveEmulator, model: str, option: str, change: dict[str, object]
) -> None:
    """What our gate refuses, the server refuses too: sent anyway it closes 1007 with a reason."""
    cfg = replace(m.SetupConfig(model=model), **change)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedOptionError):
        check_setup(cfg)
    frame = m.build_setup(cfg)  # the builder itself does not check; the gate does
    with pytest.raises(InvalidArgumentError) as err:
        await open_raw(endpoint(emulator), frame, version="v1alpha")
    assert err.value.code == 1007
    assert err.value.reason == "Request contains an invalid argument."


async def test_go_away_mid_reply_waits_for_turn_end(emulator: LiveEmulator) -> None:
    """goAway while the model talks: the reply finishes on the old connection, then we roll over."""
    emulator.config.pace = 1.0
    emulator.config.audio_chunk_ms = 20
    async with LiveClient(endpoint(emulator), setup_cfg()) as session:
        emulator.inject(Fault("go_away", time_left_s=10.0, at_audio_chunk=2))
        await session.send_text("my favourite colour is green")
        events = await until(session, lambda e: isinstance(e, Reconnected))
        kinds = [type(e).__name__ for e in events]
        # the whole reply arrived before the switch: no audible gap or cut
        assert kinds.index("TurnEnded") < kinds.index("Reconnected")
        assert "TurnLost" not in kinds
        assert any("goAway" in sent for sent in emulator.connections[0].sent)
        assert events[-1].resumed  # type: ignore[union-attr]
        emulator.config.pace = 0.0
        await session.send_text("what did I ask")
        events = await until(session, is_turn_complete)
    assert "green" in text_of(events).lower()
    assert emulator.connections[0].close_code is not None


async def test_writes_keep_order_when_the_socket_falls_behind(
    emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames written directly and frames that wait for the socket (``ws.send``, flow control)
    reach the server once each and in order, also when a writer is cancelled while it waits."""
    async with LiveClient(endpoint(emulator), setup_cfg()) as session:
        ws = next(iter(session._sockets.values()))
        transport: Any = ws.transport
        behind = False  # what the transport reports: unsent data, or none
        real_size = transport.get_write_buffer_size
        monkeypatch.setattr(
            transport, "get_write_buffer_size", lambda: 4096 if behind else real_size()
        )
        real_send = ws.send
        waited: list[bytes] = []

        async def slow_send(message: Any, *args: Any, **kwargs: Any) -> None:
            waited.append(message)
            await asyncio.sleep(0)  # a drain: other writers run meanwhile
            await real_send(message, *args, **kwargs)

        monkeypatch.setattr(ws, "send", slow_send)
        chunks = [struct.pack("<h", k) * 160 for k in range(1, 31)]
        for chunk in chunks[:3]:
            await session.send_audio(chunk)  # directly
        behind = True
        for chunk in chunks[3:8]:
            session.protocol.send_audio(chunk)
        flusher = asyncio.create_task(session.flush())  # five frames wait for the socket
        await asyncio.sleep(0)
        assert waited  # the flusher waits in ws.send
        behind = False
        flusher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await flusher
        for chunk in chunks[8:]:
            await session.send_audio(chunk)  # after the frames left behind, not before
        await session.send_text("done")
        await until(session, is_turn_complete)
    audio = [
        m.decode_b64(f["realtimeInput"]["audio"]["data"])
        for f in frames_sent_by_client(emulator)
        if "realtimeInput" in f and "audio" in f["realtimeInput"]
    ]
    kept = [c for c in chunks if c in audio]
    assert audio == kept  # in order, none twice
    assert len(kept) >= len(chunks) - 1  # only the frame in flight at the cancel may be lost
