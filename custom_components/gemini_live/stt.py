"""Speech-to-text entity: streams the satellite's microphone into the Live session.

Each chunk goes to the conversation's Live session as it arrives; the Live VAD (or, in manual
mode, HA's VAD with activity signals) ends the utterance, and the input transcription is
returned (on HA 2026.11+ also as partial results while it arrives). The model's answer is
already under way by then: the agent and TTS continue it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterable
import contextlib
from typing import Any, Final

from homeassistant.components import stt
from homeassistant.components.stt.models import SpeechAudioProcessing
from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import chat_session
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util.ulid import ulid_now

from . import GeminiLiveConfigEntry
from .const import CONF_VAD_MODE, DOMAIN, LOGGER, VAD_MANUAL
from .entity import GeminiLiveEntity, async_add_agent_entities
from .live.errors import CannotConnectError, LiveError
from .live.messages import INPUT_AUDIO_RATE
from .live.pcm import Resampler
from .repairs import async_report_error
from .runtime.conversation import LiveConversation
from .runtime.reply_audio import open_flac
from .runtime.voice_run import CURRENT_RUN, VoiceRun

PARALLEL_UPDATES = 0

# After the model started answering, wait this long for a finished input transcription.
TRANSCRIPT_GRACE_S: Final = 1.5
# Longest utterance before we stop listening (the Live VAD normally ends it much sooner).
MAX_UTTERANCE_S: Final = 30.0
LANGUAGES: Final = [
    "ar", "bg", "bn", "cs", "da", "de", "el", "en", "es", "et", "fa", "fi", "fr", "gu", "he",
    "hi", "hr", "hu", "id", "it", "ja", "kn", "ko", "lt", "lv", "ml", "mr", "nb", "nl", "pl",
    "pt", "ro", "ru", "sk", "sl", "sr", "sv", "sw", "ta", "te", "th", "tr", "uk", "ur", "vi",
    "zh",
]  # fmt: skip
PartialSpeechResult = getattr(stt, "PartialSpeechResult", None)  # HA 2026.11+


async def async_setup_entry(
    hass: HomeAssistant,
    entry: GeminiLiveConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One STT entity per agent."""
    async_add_agent_entities(entry, async_add_entities, lambda e, s: [GeminiLiveSTTEntity(e, s)])


class GeminiLiveSTTEntity(stt.SpeechToTextEntity, GeminiLiveEntity):
    """The microphone side of the agent's voice bridge."""

    _attr_name = None

    def __init__(self, entry: GeminiLiveConfigEntry, subentry: ConfigSubentry) -> None:
        """Initialise."""
        super().__init__(entry, subentry)
        self._attr_unique_id = f"{subentry.subentry_id}_stt"

    @property
    def supported_languages(self) -> list[str]:
        """Languages the Live API understands."""
        return LANGUAGES

    @property
    def supported_formats(self) -> list[stt.AudioFormats]:
        """Raw PCM."""
        return [stt.AudioFormats.WAV]

    @property
    def supported_codecs(self) -> list[stt.AudioCodecs]:
        """PCM."""
        return [stt.AudioCodecs.PCM]

    @property
    def supported_bit_rates(self) -> list[stt.AudioBitRates]:
        """16 bit."""
        return [stt.AudioBitRates.BITRATE_16]

    @property
    def supported_sample_rates(self) -> list[stt.AudioSampleRates]:
        """Anything HA sends is resampled to 16 kHz."""
        return [
            stt.AudioSampleRates.SAMPLERATE_16000,
            stt.AudioSampleRates.SAMPLERATE_8000,
            stt.AudioSampleRates.SAMPLERATE_44100,
            stt.AudioSampleRates.SAMPLERATE_48000,
        ]

    @property
    def supported_channels(self) -> list[stt.AudioChannels]:
        """Mono."""
        return [stt.AudioChannels.CHANNEL_MONO]

    @property
    def _manual_vad(self) -> bool:
        return self.subentry.data.get(CONF_VAD_MODE) == VAD_MANUAL

    @property
    def audio_processing(self) -> SpeechAudioProcessing:
        """The Live VAD ends the utterance (HA's VAD only in manual activity mode)."""
        return SpeechAudioProcessing(
            requires_external_vad=self._manual_vad,
            prefers_auto_gain_enabled=False,
            prefers_noise_reduction_enabled=False,
        )

    async def async_process_audio_stream(
        self, metadata: stt.SpeechMetadata, stream: AsyncIterable[bytes]
    ) -> stt.SpeechResult:
        """Stream the utterance into the Live session; return its transcription."""
        async for result in self._transcribe(metadata, stream):
            if isinstance(result, stt.SpeechResult):
                return result
        return stt.SpeechResult(None, stt.SpeechResultState.ERROR)  # pragma: no cover

    async def async_process_audio_stream_with_progress(
        self, metadata: stt.SpeechMetadata, stream: AsyncIterable[bytes]
    ) -> AsyncGenerator[Any]:
        """HA 2026.11+: partial transcripts while the user speaks, then the final result."""
        async for result in self._transcribe(metadata, stream):
            yield result

    async def _transcribe(
        self, metadata: stt.SpeechMetadata, stream: AsyncIterable[bytes]
    ) -> AsyncGenerator[object]:
        session_info = chat_session.current_session.get()
        conversation_id = session_info.conversation_id if session_info else ulid_now()
        agent = self.agent
        run = VoiceRun(agent.subentry.subentry_id, conversation_id)
        CURRENT_RUN.set(run)
        try:
            live = await agent.async_begin_voice_run(run)
        except LiveError as err:
            # An unreachable service is logged once (runtime/reachability.py), not per run.
            log = LOGGER.debug if isinstance(err, CannotConnectError) else LOGGER.warning
            log("Could not open a Live session for a voice run: %s", err)
            async_report_error(self.hass, self.entry, self.subentry, err)
            agent.end_voice_run(run)
            yield stt.SpeechResult(None, stt.SpeechResultState.ERROR)
            return
        except HomeAssistantError as err:  # e.g. ConverseError: the agent's tools are unusable
            agent.end_voice_run(run)
            LOGGER.warning("Agent %s cannot take a voice request: %s", agent.title, err)
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="voice_setup_failed",
                translation_placeholders={"agent": agent.title, "error": str(err)},
            ) from err
        if agent.reply_flac_format is not None:  # now, off the reply's path
            run.reply_flac = open_flac(*agent.reply_flac_format)
        feeder = self.entry.async_create_background_task(
            self.hass, self._feed(live, metadata, stream, run), "gemini_live_stt_feed"
        )
        try:
            async for partial in self._partials(run):
                yield partial
        finally:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
        if not run.text or run.superseded:
            agent.end_voice_run(run)
            yield stt.SpeechResult(None, stt.SpeechResultState.ERROR)
            return
        yield stt.SpeechResult(run.text, stt.SpeechResultState.SUCCESS)

    async def _partials(self, run: VoiceRun) -> AsyncGenerator[object]:
        """Wait for the end of the utterance (the model answers), yielding partial transcripts."""
        reported = ""
        try:
            async with asyncio.timeout(MAX_UTTERANCE_S):
                while not run.answering.is_set():
                    changed = asyncio.ensure_future(run.transcript_changed.wait())
                    answering = asyncio.ensure_future(run.answering.wait())
                    try:
                        await asyncio.wait(
                            (changed, answering), return_when=asyncio.FIRST_COMPLETED
                        )
                    finally:
                        changed.cancel()
                        answering.cancel()
                    run.transcript_changed.clear()
                    heard = run.heard_so_far
                    if PartialSpeechResult is not None and heard and heard != reported:
                        reported = heard
                        yield PartialSpeechResult(heard)
            if not run.transcribed.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TRANSCRIPT_GRACE_S):
                        await run.transcribed.wait()
        except TimeoutError:
            LOGGER.debug("No end of speech within %s s", MAX_UTTERANCE_S)

    async def _feed(
        self,
        live: LiveConversation,
        metadata: stt.SpeechMetadata,
        stream: AsyncIterable[bytes],
        run: VoiceRun,
    ) -> None:
        """Forward microphone chunks as they arrive (resampled to 16 kHz if needed)."""
        resampler = Resampler(int(metadata.sample_rate), INPUT_AUDIO_RATE)
        manual = self._manual_vad
        try:
            if manual:
                await live.client.activity_start()
            async for chunk in stream:
                if run.answering.is_set():
                    return
                await live.send_audio(resampler.process(chunk))
            # The pipeline's stream ended (HA's VAD in manual mode, or the satellite stopped).
            if manual:
                await live.client.activity_end()
            else:
                await live.client.audio_stream_end()
        except LiveError as err:
            LOGGER.debug("Microphone stream to Live stopped: %s", err)
