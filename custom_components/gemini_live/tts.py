"""Streaming TTS entity: plays the Live turn's native audio as it arrives.

In a voice run (see runtime/voice_run.py) it ignores the text it is given and yields the run's
audio as a stream (WAV or FLAC): the header as its own first chunk (HA's WAV parsing keeps only
the frames a header declares), then each chunk as Gemini sends it, with short silences while nothing
arrives (tools running) so a satellite never stalls. Used outside a voice run (``tts.speak``,
media players) it has Gemini read the text aloud with the agent's voice.

The stream's format is the one HA hands on with the least work (runtime/reply_audio.py).
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
from .live.driver import LiveClient
from .live.errors import LiveError
from .live.messages import AudioOut, Modality
from .live.protocol import SessionEnded, TurnEnded
from .runtime.reply_audio import FlacEncoder, ReplyEncoder, reply_encoder, silence
from .runtime.voice_run import CURRENT_RUN, KEEPALIVE_AFTER_S, KEEPALIVE_CHUNK_MS, VoiceRun
from .stt import LANGUAGES

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
        run = CURRENT_RUN.get()
        if run is not None and run.agent_id == self.subentry.subentry_id and not run.playing:
            opened, run.reply_flac = run.reply_flac, None
            encoder = reply_encoder(request.options, opened)
            if isinstance(encoder, FlacEncoder):
                self.agent.reply_flac_format = (encoder.rate, encoder.channels)
            run.playing = True
            return tts.TTSAudioResponse(encoder.extension, self._stream_run(run, encoder))
        encoder = reply_encoder(request.options)
        text = "".join([chunk async for chunk in request.message_gen])
        return tts.TTSAudioResponse(encoder.extension, self._read_aloud(text, encoder))

    async def _stream_run(self, run: VoiceRun, encoder: ReplyEncoder) -> AsyncGenerator[bytes]:
        yield encoder.header()
        keepalive = silence(KEEPALIVE_CHUNK_MS)
        try:
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE_AFTER_S):
                        chunk = await run.audio.get()
                except TimeoutError:
                    # nothing from Gemini yet (thinking, tools): keep it alive
                    yield encoder.encode(keepalive)
                    continue
                if chunk is None:
                    yield encoder.flush()
                    return
                yield encoder.encode(chunk)
        finally:
            run.playing = False

    async def _read_aloud(self, text: str, encoder: ReplyEncoder) -> AsyncGenerator[bytes]:
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
