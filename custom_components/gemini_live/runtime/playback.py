"""Live audio on media players and satellites: later replies and announcements, streamed.

A ``PcmStream`` carries one reply (24 kHz PCM16 chunks) while Gemini generates it. It is offered
as a URL that media players and satellites fetch themselves:

- HA 2026.11+: through HA's own audio-stream API (``tts.async_create_audio_stream`` +
  ``ResultStream.async_set_audio_stream``): HA's ``/api/tts_proxy/<token>`` URL and expiry; as
  a streaming WAV, which HA passes on without ffmpeg;
- HA 2026.10: through our ``/api/gemini_live/stream/<token>.wav`` view (a 32-byte random
  token is the credential, as with HA's own TTS proxy URLs; it expires unused after 300 s).

``LaterReplies`` is a conversation's listener for output nobody asked for any more (a tool's
result spoken after its voice run ended, proactive audio): each such turn becomes a stream
played on the agent's announce target or the satellite the conversation came from.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass, field
import secrets
import time
from typing import Any, Final

from aiohttp import web
from homeassistant.components import tts
from homeassistant.components.assist_satellite import AssistSatelliteEntityFeature
from homeassistant.components.media_player.browse_media import async_process_play_media_url
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.http import HomeAssistantView

from ..const import DOMAIN, LOGGER
from ..live.messages import OUTPUT_AUDIO_RATE, AudioOut
from ..live.pcm import wav_header
from ..live.protocol import SessionEnded, TurnEnded, TurnLost

STREAM_PATH: Final = "/api/gemini_live/stream"
STREAM_TTL_S: Final = 300.0  # as HA's own TTS streams
DATA_STREAMS: Final = f"{DOMAIN}_streams"
# HA 2026.11+: HA's own streaming URLs for audio no TTS engine made.
_create_audio_stream: Callable[..., Any] | None = getattr(tts, "async_create_audio_stream", None)
_PcmFormat: Callable[..., Any] | None = getattr(tts, "PcmFormat", None)


@dataclass(eq=False)
class PcmStream:
    """One reply being generated: 24 kHz PCM16 chunks, readable while they are written."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    created: float = field(default_factory=time.monotonic)
    chunks: list[bytes] = field(default_factory=list)
    done: bool = False
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @callback
    def write(self, pcm: bytes) -> None:
        """Append audio."""
        self.chunks.append(pcm)
        self._changed.set()

    @callback
    def end(self) -> None:
        """No more audio."""
        self.done = True
        self._changed.set()

    async def read(self, start: int) -> tuple[list[bytes], bool]:
        """Chunks from index ``start`` on (waits for new ones), and whether the stream ended."""
        while len(self.chunks) <= start and not self.done:
            self._changed.clear()
            await self._changed.wait()
        return self.chunks[start:], self.done

    async def pcm(self) -> AsyncGenerator[bytes]:
        """The audio, as it is written."""
        index = 0
        while True:
            chunks, done = await self.read(index)
            for chunk in chunks:
                yield chunk
            index += len(chunks)
            if done and not chunks:
                return


class _OwnStreams:
    """The streams our own view offers (HA 2026.10, which has no audio-stream API)."""

    def __init__(self) -> None:
        self._streams: dict[str, PcmStream] = {}

    def add(self, stream: PcmStream) -> str:
        self._expire()
        self._streams[stream.token] = stream
        return f"{STREAM_PATH}/{stream.token}.wav"

    def get(self, token: str) -> PcmStream | None:
        self._expire()
        return self._streams.get(token)

    def _expire(self) -> None:
        now = time.monotonic()
        for token, stream in list(self._streams.items()):
            if now - stream.created > STREAM_TTL_S:
                stream.end()
                del self._streams[token]


class AudioStreamView(HomeAssistantView):
    """Serves a Live reply while it is generated (HA 2026.10).

    No HA login: media players fetch it themselves. The URL's 32-byte random token is the
    credential (as with HA's own TTS proxy URLs), and it expires.
    """

    url = STREAM_PATH + "/{token}.wav"
    name = "api:gemini_live:stream"
    requires_auth = False

    def __init__(self, streams: _OwnStreams) -> None:
        """Serve ``streams``."""
        self.streams = streams

    async def get(self, request: web.Request, token: str) -> web.StreamResponse:
        """Stream the WAV."""
        stream = self.streams.get(token)
        if stream is None:
            return web.Response(status=404)
        response = web.StreamResponse(headers={"Content-Type": "audio/wav"})
        await response.prepare(request)
        await response.write(wav_header(OUTPUT_AUDIO_RATE, 1))
        try:
            async for chunk in stream.pcm():
                await response.write(chunk)
        except ConnectionResetError, asyncio.CancelledError:
            LOGGER.debug("Listener of stream %s… went away", token[:6])
            raise
        await response.write_eof()
        return response


@callback
def async_stream_url(hass: HomeAssistant, stream: PcmStream) -> str:
    """A URL (relative to HA) where media players and satellites can fetch ``stream``."""
    if _create_audio_stream is not None and _PcmFormat is not None:
        result = _create_audio_stream(hass, {tts.ATTR_PREFERRED_FORMAT: "wav"})
        result.async_set_audio_stream(_PcmFormat(OUTPUT_AUDIO_RATE, 2, 1), stream.pcm())
        return str(result.url)
    streams: _OwnStreams | None = hass.data.get(DATA_STREAMS)
    if streams is None:
        streams = hass.data[DATA_STREAMS] = _OwnStreams()
        hass.http.register_view(AudioStreamView(streams))
    return streams.add(stream)


@callback
def can_play(hass: HomeAssistant, entity_id: str) -> bool:
    """Whether ``entity_id`` can play our audio: a media player, or a satellite that announces."""
    state = hass.states.get(entity_id)
    if state is None:
        return False
    if entity_id.startswith("assist_satellite."):
        features = int(state.attributes.get("supported_features", 0))
        return bool(features & AssistSatelliteEntityFeature.ANNOUNCE)
    return entity_id.startswith("media_player.")


async def async_play(
    hass: HomeAssistant, stream: PcmStream, targets: Iterable[str], message: str = ""
) -> None:
    """Play ``stream`` on media players and assist satellites (entity ids)."""
    url = async_process_play_media_url(hass, async_stream_url(hass, stream))
    for entity_id in targets:
        domain = entity_id.split(".", 1)[0]
        if domain == "assist_satellite":
            await hass.services.async_call(
                "assist_satellite",
                "announce",
                {"entity_id": entity_id, "media_id": url, "message": message, "preannounce": False},
                blocking=False,
            )
        elif domain == "media_player":
            await hass.services.async_call(
                "media_player",
                "play_media",
                {
                    "entity_id": entity_id,
                    "media_content_id": url,
                    "media_content_type": "music",
                    "announce": True,
                },
                blocking=False,
            )
        else:
            LOGGER.warning("Cannot play audio on %s: not a media player or satellite", entity_id)


class LaterReplies:
    """A conversation's listener for turns nobody waits for: each is played as it arrives."""

    wants_followups = False

    def __init__(
        self, hass: HomeAssistant, entry: ConfigEntry[Any], targets: Callable[[], list[str]]
    ) -> None:
        """``targets`` says where to play (evaluated when a reply starts)."""
        self._hass = hass
        self._entry = entry
        self._targets = targets
        self._stream: PcmStream | None = None

    @callback
    def feed(self, item: object) -> None:
        """Audio of an unclaimed turn goes to a stream started on its first chunk."""
        match item:
            case AudioOut(data=data):
                if self._stream is None:
                    self._stream = PcmStream()
                    targets = [t for t in self._targets() if can_play(self._hass, t)]
                    LOGGER.debug("Later reply: playing on %s", targets)
                    if targets:
                        self._entry.async_create_background_task(
                            self._hass,
                            async_play(self._hass, self._stream, targets),
                            "gemini_live_later_reply",
                        )
                self._stream.write(data)
            case TurnEnded() | TurnLost() | SessionEnded():
                if self._stream is not None:
                    self._stream.end()
                    self._stream = None
