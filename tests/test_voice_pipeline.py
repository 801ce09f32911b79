"""The voice bridge through HA's real assist pipeline (STT -> agent -> TTS), no satellite.

The Wyoming end-to-end tests (tests/voice/) add a real satellite protocol on top of this.
"""

from __future__ import annotations

import asyncio

from homeassistant.components.assist_pipeline import (
    PipelineEventType,
)
from homeassistant.core import HomeAssistant
import numpy as np

from custom_components.gemini_live.runtime.reply_audio import PREFERRED_FORMAT_PASSTHROUGH
from live_emulator import LiveEmulator, Scenario

from .ha_compat import chat_content
from .voice_helpers import of, run_voice, tone
from .wav_tools import parse_wav


async def test_voice_turn_end_to_end(
    hass: HomeAssistant,
    kitchen_light: str,
    pipeline_id: str,
    emulator: LiveEmulator,
) -> None:
    """Mic audio -> Live VAD -> transcript -> tool call -> light on -> native audio out."""
    emulator.queue_transcripts("turn on the kitchen light")
    events, audio = await run_voice(hass, pipeline_id, tone(0.8))

    errors = of(events, PipelineEventType.ERROR)
    assert not errors, errors
    [stt_end] = of(events, PipelineEventType.STT_END)
    # What the Live service transcribed, biased toward the home's names (customVocabulary).
    assert stt_end["stt_output"]["text"] == "turn on the Kitchen Light"
    assert hass.states.get(kitchen_light).state == "on"
    # HA streamed our TTS from the start of the intent stage (no wait for 60 characters).
    progress = of(events, PipelineEventType.INTENT_PROGRESS)
    assert any(p.get("tts_start_streaming") for p in progress)
    [intent_end] = of(events, PipelineEventType.INTENT_END)
    speech = intent_end["intent_output"]["response"]["speech"]["plain"]["speech"]
    assert speech.strip()
    # The TTS stream carries the turn's real audio: on HA 2026.11+ as 16-bit PCM at the rate
    # asked for (none here: Gemini's 24 kHz), which HA passes on without ffmpeg; on 2026.10
    # as 48 kHz float64, which HA's ffmpeg starts converting at once (runtime/reply_audio.py).
    wav = parse_wav(audio)
    if PREFERRED_FORMAT_PASSTHROUGH:
        assert (wav.rate, wav.channels, wav.format_tag, wav.sample_width) == (24000, 1, 1, 2)
        samples = np.frombuffer(wav.pcm, dtype="<i2").astype(np.float64) / 32768
    else:
        assert (wav.rate, wav.channels, wav.format_tag, wav.sample_width) == (48000, 1, 3, 8)
        samples = np.frombuffer(wav.pcm, dtype="<f8")
    assert len(samples) > wav.rate * 0.3
    assert float(np.abs(samples).max()) > 0.05
    # The mic audio reached the emulator as 16 kHz realtime input.
    voice = emulator.connections[-1]
    assert any("audio" in f.get("realtimeInput", {}) for f in voice.received)
    assert voice.utterances[0]["transcript"] == "turn on the kitchen light"


async def test_short_reply_is_streamed_not_cached(
    hass: HomeAssistant, pipeline_id: str, emulator: LiveEmulator
) -> None:
    """Two runs with the same short reply both play their own, fresh audio (no TTS cache)."""
    audios = []
    conversation_id = None
    for _ in range(2):
        emulator.queue_transcripts("hello")
        events, audio = await run_voice(hass, pipeline_id, tone(0.5), conversation_id)
        assert not of(events, PipelineEventType.ERROR)
        [intent_end] = of(events, PipelineEventType.INTENT_END)
        conversation_id = intent_end["intent_output"]["conversation_id"]
        audios.append(audio)
    assert len(emulator.connections[-1].utterances) == 2  # both turns reached Gemini
    assert all(len(a) > 1000 for a in audios)


async def test_continue_conversation_on_need_more_input(
    hass: HomeAssistant, pipeline_id: str, emulator: LiveEmulator
) -> None:
    """A model waiting for the user (NEED_MORE_INPUT) makes the run continue the conversation."""

    emulator.config.scenario = Scenario.from_dict(
        {
            "turns": [
                {
                    "match": "audio",
                    "transcript": "set a timer",
                    "steps": [
                        {"say": "For how long?"},
                        {"end": {"turnCompleteReason": "NEED_MORE_INPUT", "waitingForInput": True}},
                    ],
                }
            ]
        }
    )
    events, _audio = await run_voice(hass, pipeline_id, tone(0.5))
    [intent_end] = of(events, PipelineEventType.INTENT_END)
    assert intent_end["intent_output"]["continue_conversation"] is True


async def test_barge_in_stops_the_reply_and_interrupts(
    hass: HomeAssistant, pipeline_id: str, emulator: LiveEmulator
) -> None:
    """A new run in the conversation while the reply plays: that reply ends, the model stops."""
    story = "Once upon a time there was a kitchen light that never wanted to sleep. " * 6
    emulator.config.pace = 1.0  # a real-time reply (~25 s), still playing when the user speaks
    emulator.config.scenario = Scenario.from_dict(
        {
            "turns": [
                {"match": "audio", "transcript": "tell me a story", "steps": [{"say": story}]},
                {"match": "audio", "transcript": "stop", "steps": [{"say": "Okay."}]},
            ]
        }
    )
    conversation_id = "barge-in-test"
    heard = asyncio.Event()
    first = hass.async_create_task(
        run_voice(hass, pipeline_id, tone(0.5), conversation_id, audio_heard=heard)
    )
    try:
        async with asyncio.timeout(30):
            await heard.wait()  # the satellite plays the first reply: now the user speaks again
        second_events, second_audio = await run_voice(hass, pipeline_id, tone(0.5), conversation_id)
        async with asyncio.timeout(10):
            _first_events, first_audio = await first
    finally:
        first.cancel()
    # The first reply was cut short: far less than the story's ~25 s of audio.
    first_wav = parse_wav(first_audio)
    assert len(first_wav.pcm) < 10 * first_wav.rate * first_wav.sample_width
    [stt_end] = of(second_events, PipelineEventType.STT_END)
    assert stt_end["stt_output"]["text"] == "stop"
    assert not of(second_events, PipelineEventType.ERROR)
    sent = [m for c in emulator.connections for m in c.sent]
    assert any(m.get("serverContent", {}).get("interrupted") for m in sent)
    assert len(second_audio) > 1000
    # The history stays clean (HA 2026.11 writes "Error: ..." for a turn that raised and
    # "(no response)" for one that added nothing): the interrupted run ended normally.
    said = [c.content or "" for c in chat_content(hass, conversation_id) if c.role == "assistant"]
    assert said
    assert not [text for text in said if text.startswith("Error") or text == "(no response)"]
