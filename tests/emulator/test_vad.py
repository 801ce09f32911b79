"""Energy VAD: unit behaviour and end-to-end utterance detection."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from websockets.exceptions import ConnectionClosed

from live_emulator import LiveEmulator
from live_emulator.vad import EnergyVad, VadSettings

from .conftest import (
    MODEL_31,
    MODEL_38,
    MODEL_38X,
    recv,
    recv_turn,
    send,
    send_audio,
    setup_session,
    silence,
    tone,
)


def events(settings: VadSettings, pcm: bytes) -> list[tuple[str, int]]:
    vad = EnergyVad(settings, 16000)
    return [(e.kind, e.offset_ms) for e in vad.feed(pcm)]


def test_tone_then_long_silence_ends_utterance() -> None:
    s = VadSettings.from_setup({"silenceDurationMs": 200}, 500)
    assert events(s, silence(100) + tone(300) + silence(250)) == [("start", 100), ("end", 600)]


def test_short_silence_does_not_end() -> None:
    s = VadSettings.from_setup({"silenceDurationMs": 200}, 500)
    assert events(s, tone(300) + silence(150) + tone(100)) == [("start", 0)]


def test_default_silence_window() -> None:
    s = VadSettings.from_setup({}, 500)
    assert events(s, tone(200) + silence(400)) == [("start", 0)]
    assert events(s, tone(200) + silence(500)) == [("start", 0), ("end", 700)]


def test_start_sensitivity() -> None:
    quiet = tone(300, dbfs=-38)
    high = VadSettings.from_setup({"startOfSpeechSensitivity": "START_SENSITIVITY_HIGH"}, 200)
    low = VadSettings.from_setup({"startOfSpeechSensitivity": "START_SENSITIVITY_LOW"}, 200)
    assert events(high, quiet)[:1] == [("start", 0)]
    assert events(low, quiet) == []


def test_end_sensitivity() -> None:
    noisy_pause = tone(300) + tone(400, dbfs=-48)
    high = VadSettings.from_setup(
        {"endOfSpeechSensitivity": "END_SENSITIVITY_HIGH", "silenceDurationMs": 200}, 500
    )
    low = VadSettings.from_setup(
        {"endOfSpeechSensitivity": "END_SENSITIVITY_LOW", "silenceDurationMs": 200}, 500
    )
    assert events(high, noisy_pause) == [("start", 0), ("end", 500)]
    assert events(low, noisy_pause) == [("start", 0)]


def test_prefix_padding() -> None:
    blip = silence(50) + tone(60) + silence(300)
    assert events(VadSettings.from_setup({"prefixPaddingMs": 100}, 200), blip) == []
    assert events(VadSettings.from_setup({"prefixPaddingMs": 20}, 200), blip) == [
        ("start", 50),
        ("end", 310),
    ]


def test_chunking_does_not_change_results() -> None:
    s = VadSettings.from_setup({"silenceDurationMs": 100}, 500)
    pcm = tone(250) + silence(150) + tone(80) + silence(200)
    whole = events(s, pcm)
    vad = EnergyVad(s, 16000)
    pieces = []
    for i in range(0, len(pcm), 333):
        pieces.extend((e.kind, e.offset_ms) for e in vad.feed(pcm[i : i + 333]))
    assert pieces == whole


async def test_utterance_end_triggers_reply(emu: LiveEmulator) -> None:
    emu.queue_transcripts("turn off the radio")
    setup = {
        "model": f"models/{MODEL_38}",
        "inputAudioTranscription": {},
        "realtimeInputConfig": {"automaticActivityDetection": {"silenceDurationMs": 300}},
    }
    ws = await setup_session(emu, setup)
    # Short pause: no utterance end yet; then a long one ends it.
    await send_audio(ws, tone(300) + silence(200) + tone(200) + silence(400))
    msgs = await recv_turn(ws)
    # gemini-3.8-live: growing interim hypotheses while the user speaks, then the final pieces.
    interim = [
        m["serverContent"]["interimInputTranscription"]["text"]
        for m in msgs
        if "interimInputTranscription" in m.get("serverContent", {})
    ]
    assert interim == ["turn", "turn off", "turn off the", "turn off the radio"]
    assert msgs[len(interim) : len(interim) + 2] == [
        {"serverContent": {"inputTranscription": {"text": "turn off"}}},
        {"serverContent": {"inputTranscription": {"text": " the radio", "finished": True}}},
    ]
    assert len(emu.connections[0].utterances) == 1
    utt = emu.connections[0].utterances[0]
    assert (utt["start_ms"], utt["end_ms"]) == (0, 1000)
    await ws.close()


async def test_audio_stream_end_flushes_utterance(emu: LiveEmulator) -> None:
    ws = await setup_session(emu, {"model": f"models/{MODEL_38}"})
    await send_audio(ws, tone(300) + silence(100))
    await send(ws, {"realtimeInput": {"audioStreamEnd": True}})
    await recv_turn(ws)
    assert emu.connections[0].utterances[0]["end_ms"] == 400
    await ws.close()


async def test_manual_activity_signals(emu: LiveEmulator) -> None:
    emu.queue_transcripts("first", "second")
    setup = {
        "model": f"models/{MODEL_38}",
        "inputAudioTranscription": {},
        "realtimeInputConfig": {"automaticActivityDetection": {"disabled": True}},
    }
    ws = await setup_session(emu, setup)
    # Loud audio alone does nothing with VAD disabled.
    await send_audio(ws, tone(300) + silence(800))
    await send(ws, {"realtimeInput": {"activityStart": {}}})
    await send_audio(ws, silence(200))
    await send(ws, {"realtimeInput": {"activityEnd": {}}})
    msgs = await recv_turn(ws)
    final = [m for m in msgs if "inputTranscription" in m.get("serverContent", {})]
    assert final == [{"serverContent": {"inputTranscription": {"text": "first", "finished": True}}}]
    assert msgs[0] == {"serverContent": {"interimInputTranscription": {"text": "first"}}}
    assert msgs[1] == final[0]
    # audioStreamEnd needs automatic VAD.
    await send(ws, {"realtimeInput": {"audioStreamEnd": True}})
    with pytest.raises(ConnectionClosed) as err:
        await recv(ws)
    assert err.value.rcvd is not None
    assert err.value.rcvd.code == 1007


async def test_voice_activity_per_model_and_no_interruption(
    make_emulator: Callable[..., LiveEmulator],
) -> None:
    """3.1 sends voiceActivity (type, audioOffset) from its VAD; the 3.8 models send none."""
    async with make_emulator() as emu:
        setup = {"realtimeInputConfig": {"activityHandling": "NO_INTERRUPTION"}}
        ws = await setup_session(emu, {"model": f"models/{MODEL_31}", **setup})
        await send_audio(ws, silence(100) + tone(200) + silence(600))
        msgs = await recv_turn(ws)
        assert msgs[0] == {"voiceActivity": {"type": "ACTIVITY_START", "audioOffset": "0.100s"}}
        assert msgs[1] == {"voiceActivity": {"type": "ACTIVITY_END", "audioOffset": "0.800s"}}
        await ws.close()
        for model in (MODEL_38, MODEL_38X):
            ws = await setup_session(emu, {"model": f"models/{model}", **setup})
            await send_audio(ws, tone(200) + silence(600))
            msgs = await recv_turn(ws)
            assert not any("voiceActivity" in m for m in msgs)
            await ws.close()
    # explicitVadSignal only where Vertex AI's fields are accepted.
    async with make_emulator(vertex_only_fields=True) as emu:
        ws = await setup_session(emu, {"model": f"models/{MODEL_38}", "explicitVadSignal": True})
        await send_audio(ws, tone(200) + silence(600))
        msgs = await recv_turn(ws)
        assert [m["voiceActivity"]["type"] for m in msgs if "voiceActivity" in m] == [
            "ACTIVITY_START",
            "ACTIVITY_END",
        ]
        await ws.close()
