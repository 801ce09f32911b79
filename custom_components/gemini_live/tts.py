"""Streaming TTS entity: plays the Live turn's native audio as it arrives.

In a voice run (see voice.py) it ignores the text it is given and yields the run's 24 kHz audio
as a float32 WAV stream: the header as its own first chunk (HA's WAV parsing keeps only the frames
a header declares), then each chunk as Gemini sends it, with short silences while nothing arrives
(tools running) so a satellite never stalls. Used outside a voice run (``tts.speak``, media
players) it has Gemini read the text aloud with the agent's voice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
import contextlib
from dataclasses import replace
from typing import Final

from homeassistant.components import tts
from homeassistant.components.tts.entity import TTSAudioRequest
from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import GeminiLiveConfigEntry
from .const import LOGGER
from .entity import GeminiLiveEntity, async_add_agent_entities
from .live.audio import Resampler, SampleFormat, pcm16_to_float32, wav_header
from .live.connection import LiveError
from .live.messages import OUTPUT_AUDIO_RATE, AudioOut, Interrupted, Modality, TurnComplete
from .live.session import LiveSession
from .stt import LANGUAGES
from .voice import CURRENT_RUN, KEEPALIVE_AFTER_S, KEEPALIVE_CHUNK_MS, VoiceRun

PARALLEL_UPDATES = 0

READ_ALOUD_PROMPT: Final = (
    "You are a text-to-speech voice. Read the user's text aloud exactly as written, in its "
    "language, adding nothing and leaving nothing out."
)
SPEAK_TIMEOUT_S: Final = 60.0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: GeminiLiveConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One TTS entity per agent."""
    async_add_agent_entities(entry, async_add_entities, lambda e, s: [GeminiLiveTTSEntity(e, s)])


# HA converts our stream with ffmpeg, whose WAV reader works in 4096-byte packets: 42.7 ms of
# 24 kHz float32 (PCM s16 is far worse: ffmpeg holds 64 KiB). As 48 kHz float64 the same
# packet is 10.7 ms of audio. Measured with ffmpeg 5.1 on real-time 20 ms chunks, first output
# after 2-3 ms instead of 44 ms. The 24 -> 48 kHz resampling costs ~1 ms CPU per audio second.
STREAM_RATE: Final = 48000


def float_wav_header() -> bytes:
    """Header of an endless 48 kHz mono float64 WAV stream."""
    return wav_header(STREAM_RATE, 1, SampleFormat.FLOAT64)


class StreamEncoder:
    """24 kHz PCM16 from Gemini -> the stream's 48 kHz float64 samples."""

    def __init__(self) -> None:
        """A fresh resampler state."""
        self._resampler = Resampler(OUTPUT_AUDIO_RATE, STREAM_RATE)

    def encode(self, pcm16: bytes) -> bytes:
        """Encode one chunk."""
        samples = self._resampler.process_float(pcm16_to_float32(pcm16))
        return samples.astype("<f8").tobytes()

    def flush(self) -> bytes:
        """The resampler's tail."""
        return self._resampler.flush_float().astype("<f8").tobytes()


_SILENCE: Final = bytes(STREAM_RATE * KEEPALIVE_CHUNK_MS // 1000 * 8)


class GeminiLiveTTSEntity(tts.TextToSpeechEntity, GeminiLiveEntity):
    """The loudspeaker side of the agent's voice bridge."""

    _attr_translation_key = "voice"  # HA's TTS needs an engine name

    def __init__(self, entry: GeminiLiveConfigEntry, subentry: ConfigSubentry) -> None:
        """Initialise."""
        super().__init__(entry, subentry)
        self._attr_unique_id = f"{subentry.subentry_id}_tts"

    @property
    def supported_languages(self) -> list[str]:
        """Languages the Live API speaks."""
        return LANGUAGES

    @property
    def default_language(self) -> str:
        """English unless the pipeline asks for another."""
        return "en"

    async def async_stream_tts_audio(self, request: TTSAudioRequest) -> tts.TTSAudioResponse:
        """Stream the voice run's audio, or have Gemini read the text aloud."""
        run = CURRENT_RUN.get()
        if run is not None and run.agent_id == self.subentry.subentry_id and not run.playing:
            run.playing = True
            return tts.TTSAudioResponse("wav", self._stream_run(run))
        text = "".join([chunk async for chunk in request.message_gen])
        return tts.TTSAudioResponse("wav", self._read_aloud(text))

    async def _stream_run(self, run: VoiceRun) -> AsyncGenerator[bytes]:
        yield float_wav_header()
        encoder = StreamEncoder()
        try:
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE_AFTER_S):
                        chunk = await run.audio.get()
                except TimeoutError:
                    yield _SILENCE  # nothing from Gemini yet (thinking, tools): keep it alive
                    continue
                if chunk is None:
                    yield encoder.flush()
                    return
                yield encoder.encode(chunk)
        finally:
            run.playing = False

    async def _read_aloud(self, text: str) -> AsyncGenerator[bytes]:
        """One-shot Live session speaking ``text`` with the agent's voice."""
        agent = self.agent
        setup, _tools = agent.build_for_speech(READ_ALOUD_PROMPT)
        setup = replace(setup, response_modality=Modality.AUDIO, session_resumption=False)
        yield float_wav_header()
        encoder = StreamEncoder()
        session = LiveSession(agent.manager.factory.endpoint, setup)
        try:
            async with asyncio.timeout(SPEAK_TIMEOUT_S):
                await session.start()
                await session.send_text(text)
                while True:
                    event = await session.receive()
                    if isinstance(event, AudioOut):
                        yield encoder.encode(event.data)
                    elif isinstance(event, (TurnComplete, Interrupted)):
                        yield encoder.flush()
                        return
        except (LiveError, TimeoutError) as err:
            LOGGER.warning("Gemini could not read the text aloud: %s", err)
        finally:
            with contextlib.suppress(Exception):
                await session.close()
