"""The load generator speaks the Live protocol: our client and the SDK against it, frame by frame.

What keeps it from drifting away from the protocol: every frame it sends (and every frame our
client sent it) is validated by the SDK oracle; its frames have the same shapes and the same
order within a turn as the emulator's for the same conversation; it closes bad setups as the
emulator does; the google-genai SDK completes a turn against it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
import json
from typing import Any
import warnings

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from custom_components.gemini_live.live.driver import LiveClient
from custom_components.gemini_live.live.endpoint import Endpoint
from custom_components.gemini_live.live.errors import InvalidArgumentError
from custom_components.gemini_live.live.messages import (
    AudioOut,
    InputTranscription,
    OutputTranscription,
    SetupConfig,
    Usage,
)
from custom_components.gemini_live.live.protocol import (
    HandleUpdated,
    ProtocolEvent,
    TurnEnded,
    TurnStarted,
)
from devtools.loadgen import (
    HANDLE_PREFIX,
    LoadGenConfig,
    LoadGenerator,
    fetch_stats,
    summarize,
)
from devtools.wyoming_satellite import load_wav_pcm16k
from live_emulator import EmulatorConfig, LiveEmulator, Scenario
from live_emulator.faults import frame_kinds

from ..live.sdk_oracle import validate_client, validate_server
from ..without_ha import (  # noqa: F401 - autouse fixtures
    _sockets,
    auto_enable_custom_integrations,
    setup_homeassistant,
)

KEY = "test-key"
MODEL = "gemini-3.8-live"
SPEECH = "tests/fixtures/speech/turn_on_kitchen_light.wav"
TRANSCRIPT = "Turn on the kitchen light."
REPLY = "Sure, the kitchen light is on now."
TIMEOUT = 10.0
CHUNK = 640  # 20 ms at 16 kHz


@pytest.fixture
async def loadgen() -> AsyncIterator[LoadGenerator]:
    """A load generator that sends its replies at once and records every frame."""
    config = LoadGenConfig(reply_text=REPLY, transcript=TRANSCRIPT, pace=0.0)
    async with LoadGenerator(config, record=True) as lg:
        yield lg


def setup_cfg() -> SetupConfig:
    """The integration's shape of setup (transcriptions, resumption)."""
    return SetupConfig(
        model=MODEL,
        voice="Puck",
        system_instruction="You are a voice assistant.",
        input_transcription=True,
        output_transcription=True,
    )


async def converse(client: LiveClient, turns: int) -> list[list[ProtocolEvent]]:
    """Speak ``turns`` requests (speech, then silence until the answer); the events per turn."""
    pcm = load_wav_pcm16k(SPEECH)
    out: list[list[ProtocolEvent]] = []
    async with asyncio.timeout(TIMEOUT):
        for _ in range(turns):
            client.begin_speech()
            for i in range(0, len(pcm), CHUNK):
                await client.send_audio(pcm[i : i + CHUNK].ljust(CHUNK, b"\0"))
            events: list[ProtocolEvent] = []
            for _ in range(30):  # 600 ms of silence: the server's VAD ends the utterance
                await client.send_audio(bytes(CHUNK))
            async for event in client:
                events.append(event)
                if isinstance(event, TurnEnded):
                    break
            # The turn's usage and new handle follow turnComplete.
            while not isinstance(events[-1], HandleUpdated):
                events.append(await client.receive())
            out.append(events)
    return out


def shape(node: Any, path: str = "") -> frozenset[str]:
    """The key paths of a JSON value (list items collapsed to ``[]``)."""
    if isinstance(node, dict):
        return frozenset().union(
            *(shape(value, f"{path}.{key}") for key, value in node.items()), {path}
        )
    if isinstance(node, list):
        return frozenset().union(*(shape(item, f"{path}[]") for item in node), {path})
    return frozenset({path})


def turn_kinds(frames: list[dict[str, Any]]) -> list[str]:
    """The order of frame kinds, runs of reply audio + transcription collapsed to ``reply``.

    Interim transcriptions are left out (how many depends on each server's VAD timing).
    """
    out: list[str] = []
    for frame in frames:
        kinds = frame_kinds(frame) - {"serverContent", "modelTurn"}
        if "interimInputTranscription" in kinds:
            continue
        label = "reply" if kinds & {"audio", "outputTranscription"} else "+".join(sorted(kinds))
        if not out or out[-1] != label or label != "reply":
            out.append(label)
    return out


async def test_our_client_against_the_load_generator(loadgen: LoadGenerator) -> None:
    """Two concurrent sessions of two turns: every event our client needs, every frame valid."""
    endpoint = Endpoint(api_key=KEY, base_url=loadgen.http_url)
    before = await fetch_stats(loadgen.host, loadgen.port)
    clients = [LiveClient(endpoint, setup_cfg()) for _ in range(2)]
    for client in clients:
        await client.start()
    try:
        results = await asyncio.gather(*(converse(client, 2) for client in clients))
    finally:
        for client in clients:
            await client.close()
    audio_bytes = round(loadgen.script.audio_s * 24000) * 2
    for turns in results:
        for events in turns:
            started = next(i for i, e in enumerate(events) if isinstance(e, TurnStarted))
            heard = [e for e in events[:started] if isinstance(e, InputTranscription)]
            assert "".join(e.text for e in heard) == TRANSCRIPT
            assert heard[-1].finished
            assert sum(len(e.data) for e in events if isinstance(e, AudioOut)) == audio_bytes
            said = "".join(e.text for e in events if isinstance(e, OutputTranscription))
            assert said == REPLY
            assert isinstance(events[-3], TurnEnded)
            assert isinstance(events[-2], Usage)
            assert events[-2].response_tokens > 0
            assert isinstance(events[-1], HandleUpdated)
            assert events[-1].handle is not None
            assert events[-1].handle.startswith(HANDLE_PREFIX)

    async with asyncio.timeout(TIMEOUT):
        while len(loadgen.records) < 2:  # noqa: ASYNC110 - the connections close
            await asyncio.sleep(0.01)
    for record in loadgen.records:
        frames = [(side, json.loads(payload)) for side, payload in record]
        assert frames[0][0] == "client"
        assert set(frames[0][1]) == {"setup"}
        assert frames[1] == ("server", {"setupComplete": frames[1][1]["setupComplete"]})
        for side, frame in frames:
            if side == "server":
                validate_server(frame)
            else:
                validate_client(frame)
        server = [frame for side, frame in frames if side == "server"]
        assert (
            turn_kinds(server)[1:]
            == [
                "inputTranscription",
                "inputTranscription",
                "reply",
                "generationComplete",
                "turnComplete+usageMetadata",
                "sessionResumptionUpdate",
            ]
            * 2
        )
    stats = summarize(before, await fetch_stats(loadgen.host, loadgen.port))
    assert stats["replies"] == 4
    assert stats["protocol_errors"] == 0
    assert stats["paced_frames"] > 0


async def test_frames_match_the_emulator(loadgen: LoadGenerator) -> None:
    """The same conversation with the emulator: the same frame shapes and the same turn order."""
    scenario = Scenario.from_dict(
        {"turns": [{"match": "audio", "transcript": TRANSCRIPT, "steps": [{"say": REPLY}]}] * 2}
    )
    config = EmulatorConfig(api_keys=frozenset({KEY}), pace=0.0, scenario=scenario)
    async with LiveEmulator(config, host="127.0.0.1", port=0) as emu:
        client = LiveClient(Endpoint(api_key=KEY, base_url=emu.http_url), setup_cfg())
        await client.start()
        try:
            await converse(client, 2)
        finally:
            await client.close()
        emulated = list(emu.connections[0].sent)
    client = LiveClient(Endpoint(api_key=KEY, base_url=loadgen.http_url), setup_cfg())
    await client.start()
    try:
        await converse(client, 2)
    finally:
        await client.close()
    async with asyncio.timeout(TIMEOUT):
        while not loadgen.records:  # noqa: ASYNC110 - the connection closes
            await asyncio.sleep(0.01)
    generated = [json.loads(p) for side, p in loadgen.records[0] if side == "server"]

    def shapes(frames: list[dict[str, Any]]) -> dict[frozenset[str], frozenset[str]]:
        return {frozenset(frame_kinds(f)): shape(f) for f in frames}

    assert shapes(generated) == shapes(emulated)
    assert turn_kinds(generated) == turn_kinds(emulated)
    for frames in (generated, emulated):
        reply: list[float] = []
        for frame in frames:
            if "audio" in frame_kinds(frame):
                data = frame["serverContent"]["modelTurn"]["parts"][0]["inlineData"]["data"]
                reply.append(len(data) * 3 // 4 / 48)  # ms of 24 kHz PCM16
            elif "turnComplete" in frame_kinds(frame):
                assert reply
                assert all(200 <= ms <= 240 for ms in reply[:-1]), reply  # the last is a rest
                reply = []


@pytest.mark.parametrize(
    ("setup", "key", "reason"),
    [
        ({"setup": {"model": f"models/{MODEL}", "bogus": 1}}, KEY, "Unknown name"),
        ({"setup": {"model": "models/nope"}}, KEY, "is not found"),
        ({"setup": {"model": f"models/{MODEL}"}}, "", "unregistered callers"),
        ({"realtimeInput": {"text": "hi"}}, KEY, "invalid argument"),
    ],
)
async def test_bad_setups_close_like_the_emulator(
    loadgen: LoadGenerator, setup: dict[str, Any], key: str, reason: str
) -> None:
    """The setup is checked by the emulator's own rules: the same close codes and reasons."""
    closes = []
    path = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    headers = {"x-goog-api-key": key} if key else {}
    async with LiveEmulator(EmulatorConfig(pace=0.0), host="127.0.0.1", port=0) as emu:
        for base in (loadgen.ws_url, emu.ws_url):
            async with connect(base + path, additional_headers=headers) as ws:
                await ws.send(json.dumps(setup))
                with pytest.raises(ConnectionClosed) as closed:
                    async with asyncio.timeout(TIMEOUT):
                        await ws.recv()
            assert closed.value.rcvd is not None
            closes.append((closed.value.rcvd.code, closed.value.rcvd.reason))
    assert closes[0] == closes[1]
    assert reason in closes[0][1]


@pytest.fixture
def plain_ws_sdk() -> Iterator[None]:
    """The SDK always uses wss://: point it at ws://."""
    from google.genai import errors as genai_errors, live as genai_live

    original = genai_live.ws_connect

    def patched(uri: str, *args: Any, **kwargs: Any) -> Any:
        kwargs.pop("ssl", None)
        return original(uri.replace("wss://", "ws://", 1), *args, **kwargs)

    genai_live.ws_connect = patched
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", genai_errors.ExperimentalWarning)
        yield
    genai_live.ws_connect = original


async def test_the_sdk_completes_a_turn(loadgen: LoadGenerator, plain_ws_sdk: None) -> None:
    """google-genai's client: setup, audio in, the whole reply and turnComplete out."""
    from google import genai
    from google.genai import types

    sdk = genai.Client(
        api_key=KEY, http_options={"base_url": loadgen.http_url, "api_version": "v1beta"}
    )
    config = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        output_audio_transcription=types.AudioTranscriptionConfig(),
    )
    pcm = load_wav_pcm16k(SPEECH) + bytes(CHUNK * 30)
    audio = b""
    said = ""
    try:
        async with asyncio.timeout(TIMEOUT), sdk.aio.live.connect(model=MODEL, config=config) as s:
            for i in range(0, len(pcm), CHUNK):
                blob = types.Blob(data=pcm[i : i + CHUNK], mime_type="audio/pcm;rate=16000")
                await s.send_realtime_input(audio=blob)
            async for msg in s.receive():
                content = msg.server_content
                assert content is not None
                for part in content.model_turn.parts if content.model_turn else ():
                    assert part.inline_data is not None
                    audio += part.inline_data.data or b""
                if content.output_transcription is not None:
                    said += content.output_transcription.text or ""
    finally:
        await sdk.aio.aclose()
    assert len(audio) == round(loadgen.script.audio_s * 24000) * 2
    assert said == REPLY


async def test_a_refused_setup_reaches_our_client_as_its_error(loadgen: LoadGenerator) -> None:
    """The close the generator sends is the LiveError the real service's close means."""
    endpoint = Endpoint(api_key=KEY, base_url=loadgen.http_url)
    bad = SetupConfig(model=MODEL, extra_generation_config={"bogus": 1})
    with pytest.raises(InvalidArgumentError):
        await LiveClient(endpoint, bad).start()


async def test_reply_variants_tell_connections_apart() -> None:
    """Connection k gets the reply plus ``k % variants`` steps of silence; each reply is logged."""
    config = LoadGenConfig(
        reply_text=REPLY, transcript=TRANSCRIPT, pace=0.0, variants=2, log_replies=True
    )
    async with LoadGenerator(config) as lg:
        endpoint = Endpoint(api_key=KEY, base_url=lg.http_url)
        clients = [LiveClient(endpoint, setup_cfg()) for _ in range(3)]
        for client in clients:  # one after the other: the order of opening is known
            await client.start()
        try:
            audio = []
            for client in clients:
                (events,) = await converse(client, 1)
                audio.append(sum(len(e.data) for e in events if isinstance(e, AudioOut)))
        finally:
            for client in clients:
                await client.close()
        base = round(lg.script.audio_s * 24000) * 2
        step = 24000 * config.variant_step_ms // 1000 * 2
        assert audio == [base, base + step, base]
        assert lg.reply_log is not None
        assert [(r.connection, r.variant) for r in lg.reply_log] == [(0, 0), (1, 1), (2, 0)]
        times = [r.first_frame_at for r in lg.reply_log]
        assert times == sorted(times)
