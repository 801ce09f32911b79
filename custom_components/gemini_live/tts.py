"""Streaming TTS entity: plays the Live turn's native audio as it arrives.

In a voice run (see runtime/voice_run.py) it ignores the text it is given and yields the run's
audio as a streaming WAV: the header as its own first chunk (HA's WAV parsing keeps only the
frames a header declares), then each chunk as Gemini sends it, with short silences while nothing
arrives (tools running) so a satellite never stalls. Used outside a voice run (``tts.speak``,
media players) it has Gemini read the text aloud with the agent's voice.

The stream's format is the one with the shortest path to the satellite:

- HA 2026.11+ passes a streaming 16-bit PCM WAV through untouched when it already has the
  satellite's preferred format (rate, channels, width), with no ffmpeg at all. We declare the
  ``preferred_*`` options, so HA hands them to us, and resample Gemini's 24 kHz to the rate
  asked for (22.05 kHz for Wyoming, 16 kHz for ESPHome).
- HA 2026.10 always converts with ffmpeg, whose WAV reader starts at once on a 48 kHz float64
  stream (a 16-bit one is held back 64 KiB).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
import contextlib
from dataclasses import replace
from typing import Any, Final

from homeassistant.components import tts
from homeassistant.components.tts.entity import TTSAudioRequest
from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import GeminiLiveConfigEntry
from .const import LOGGER
from .entity import GeminiLiveEntity, async_add_agent_entities
from .live.driver import LiveClient
from .live.errors import LiveError
from .live.messages import OUTPUT_AUDIO_RATE, AudioOut, Modality
from .live.pcm import Resampler, SampleFormat, pcm16_to_float32, wav_header
from .live.protocol import SessionEnded, TurnEnded
from .runtime.voice_run import CURRENT_RUN, KEEPALIVE_AFTER_S, KEEPALIVE_CHUNK_MS, VoiceRun
from .stt import LANGUAGES

PARALLEL_UPDATES = 0

READ_ALOUD_PROMPT: Final = (
    "You are a text-to-speech voice. Read the user's text aloud exactly as written, in its "
    "language, adding nothing and leaving nothing out."
)
SPEAK_TIMEOUT_S: Final = 60.0
PCM_PASSTHROUGH: Final = hasattr(tts, "PcmFormat")  # HA 2026.11+: no ffmpeg for matching PCM
FLOAT_STREAM_RATE: Final = 48000  # HA 2026.10: see the module docstring


async def async_setup_entry(
    hass: HomeAssistant,
    entry: GeminiLiveConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One TTS entity per agent."""
    async_add_agent_entities(entry, async_add_entities, lambda e, s: [GeminiLiveTTSEntity(e, s)])


class StreamEncoder:
    """24 kHz PCM16 from Gemini -> the stream's samples (see the module docstring)."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        """Pick the format for this HA and the options the consumer asked for."""
        self.pcm = PCM_PASSTHROUGH
        if self.pcm:
            rate = options.get(tts.ATTR_PREFERRED_SAMPLE_RATE) or OUTPUT_AUDIO_RATE
            self.rate = int(rate)
        else:
            self.rate = FLOAT_STREAM_RATE
        self._resampler = Resampler(OUTPUT_AUDIO_RATE, self.rate)

    def header(self) -> bytes:
        """Header of an endless mono WAV stream in this format."""
        return wav_header(self.rate, 1, SampleFormat.PCM16 if self.pcm else SampleFormat.FLOAT64)

    def silence(self, ms: int) -> bytes:
        """``ms`` of silence in this format."""
        return bytes(self.rate * ms // 1000 * (2 if self.pcm else 8))

    def encode(self, pcm16: bytes) -> bytes:
        """Encode one chunk."""
        if self.pcm:
            return self._resampler.process(pcm16)
        samples = self._resampler.process_float(pcm16_to_float32(pcm16))
        return samples.astype("<f8").tobytes()

    def flush(self) -> bytes:
        """The resampler's tail."""
        if self.pcm:
            return self._resampler.flush()
        return self._resampler.flush_float().astype("<f8").tobytes()


class GeminiLiveTTSEntity(tts.TextToSpeechEntity, GeminiLiveEntity):
    """The loudspeaker side of the agent's voice bridge."""

    _attr_translation_key = "voice"  # HA's TTS needs an engine name
    _attr_supported_options: list[str] | None = [  # noqa: RUF012 - HA's attribute style
        tts.ATTR_PREFERRED_FORMAT,
        tts.ATTR_PREFERRED_SAMPLE_RATE,
        tts.ATTR_PREFERRED_SAMPLE_CHANNELS,
        tts.ATTR_PREFERRED_SAMPLE_BYTES,
    ]

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
        encoder = StreamEncoder(request.options)
        run = CURRENT_RUN.get()
        if run is not None and run.agent_id == self.subentry.subentry_id and not run.playing:
            run.playing = True
            return tts.TTSAudioResponse("wav", self._stream_run(run, encoder))
        text = "".join([chunk async for chunk in request.message_gen])
        return tts.TTSAudioResponse("wav", self._read_aloud(text, encoder))

    async def _stream_run(self, run: VoiceRun, encoder: StreamEncoder) -> AsyncGenerator[bytes]:
        yield encoder.header()
        silence = encoder.silence(KEEPALIVE_CHUNK_MS)
        try:
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE_AFTER_S):
                        chunk = await run.audio.get()
                except TimeoutError:
                    yield silence  # nothing from Gemini yet (thinking, tools): keep it alive
                    continue
                if chunk is None:
                    yield encoder.flush()
                    return
                yield encoder.encode(chunk)
        finally:
            run.playing = False

    async def _read_aloud(self, text: str, encoder: StreamEncoder) -> AsyncGenerator[bytes]:
        """One-shot Live session speaking ``text`` with the agent's voice."""
        agent = self.agent
        setup = replace(
            agent.build_for_speech(READ_ALOUD_PROMPT),
            response_modality=Modality.AUDIO,
            session_resumption=False,
        )
        yield encoder.header()
        client = LiveClient(agent.endpoint, setup, ssl_context=agent.ssl_context)
        try:
            async with asyncio.timeout(SPEAK_TIMEOUT_S):
                await client.start()
                await client.send_text(text)
                async for event in client:
                    if isinstance(event, AudioOut):
                        yield encoder.encode(event.data)
                    elif isinstance(event, TurnEnded):
                        yield encoder.flush()
                        return
                    elif isinstance(event, SessionEnded):
                        raise event.error
        except (LiveError, TimeoutError) as err:
            LOGGER.warning("Gemini could not read the text aloud: %s", err)
        finally:
            with contextlib.suppress(Exception):
                await client.close()
