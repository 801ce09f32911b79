"""Helpers for voice tests: a microphone, one pipeline run, event lookup."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import math
import struct
from typing import Any

from homeassistant.components import stt, tts
from homeassistant.components.assist_pipeline import (
    PipelineEvent,
    PipelineEventType,
    async_pipeline_from_audio_stream,
)
from homeassistant.core import Context, HomeAssistant

RATE = 16000


def tone(seconds: float, amp: float = 0.3) -> bytes:
    """Speech-loud PCM16 16 kHz tone."""
    n = int(seconds * RATE)
    return struct.pack(
        f"<{n}h", *(int(amp * 32767 * math.sin(2 * math.pi * 220 * i / RATE)) for i in range(n))
    )


async def mic(utterance: bytes, *, tail_s: float = 5.0) -> AsyncIterator[bytes]:
    """A satellite's microphone: the utterance, then silence until the pipeline stops reading."""
    data = utterance + bytes(int(tail_s * RATE) * 2)
    for i in range(0, len(data), 320):  # 10 ms chunks, as HA delivers them
        yield data[i : i + 320]
        await asyncio.sleep(0)


async def run_voice(
    hass: HomeAssistant,
    pipeline_id: str,
    utterance: bytes,
    conversation_id: str | None = None,
    *,
    events: list[PipelineEvent] | None = None,
    audio_heard: asyncio.Event | None = None,
) -> tuple[list[PipelineEvent], bytes]:
    """Run one voice pipeline; return its events and the TTS stream's bytes.

    Like a satellite, the TTS stream is read from run-start on, while the run goes on.
    ``events`` (if given) fills while the run goes on; ``audio_heard`` is set once reply audio
    (more than the WAV header) arrived.
    """
    events = [] if events is None else events
    reader: list[asyncio.Task[bytes]] = []

    async def read(token: str) -> bytes:
        stream = tts.async_get_stream(hass, token)
        assert stream is not None
        audio = b""
        async for chunk in stream.async_stream_result():
            audio += chunk
            if audio_heard is not None and len(audio) > 100:
                audio_heard.set()
        return audio

    def on_event(event: PipelineEvent) -> None:
        events.append(event)
        if event.type is PipelineEventType.RUN_START and event.data:
            token = event.data["tts_output"]["token"]
            reader.append(hass.async_create_task(read(token)))

    await async_pipeline_from_audio_stream(
        hass,
        context=Context(),
        event_callback=on_event,
        stt_metadata=stt.SpeechMetadata(
            language="en",
            format=stt.AudioFormats.WAV,
            codec=stt.AudioCodecs.PCM,
            bit_rate=stt.AudioBitRates.BITRATE_16,
            sample_rate=stt.AudioSampleRates.SAMPLERATE_16000,
            channel=stt.AudioChannels.CHANNEL_MONO,
        ),
        stt_stream=mic(utterance),
        pipeline_id=pipeline_id,
        conversation_id=conversation_id,
        tts_audio_output={tts.ATTR_PREFERRED_FORMAT: "wav"},  # our stream, unconverted
    )
    if not any(e.type is PipelineEventType.TTS_END for e in events):
        reader[0].cancel()  # no TTS in this run (nothing to say): nothing to read
        return events, b""
    async with asyncio.timeout(10):
        audio = await reader[0]
    return events, audio


def of(events: list[PipelineEvent], kind: PipelineEventType) -> list[dict[str, Any]]:
    """Data of the events of one type."""
    return [e.data or {} for e in events if e.type is kind]
