"""Live audio on media players and satellites: a streaming HTTP endpoint and playback.

``AudioStreams`` hands out unguessable single-stream URLs (``/api/gemini_live/stream/<token>``,
a 32-byte random token, expiring unused after ``STREAM_TTL_S``) whose body is the Live reply as a
24 kHz mono PCM s16 WAV, written while Gemini generates it. ``async_play`` sends such a URL to
media players (``media_player.play_media``, announce) or assist satellites
(``assist_satellite.announce``), through HA's media URL helper which makes it absolute.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
import secrets
import time
from typing import Final

from aiohttp import web
from homeassistant.components.media_player.browse_media import async_process_play_media_url
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.http import HomeAssistantView

from .const import DOMAIN, LOGGER
from .live.audio import wav_header
from .live.messages import OUTPUT_AUDIO_RATE

STREAM_PATH: Final = "/api/gemini_live/stream"
STREAM_TTL_S: Final = 300.0  # as HA's own TTS streams
DATA_STREAMS: Final = f"{DOMAIN}_streams"


@dataclass(eq=False)
class AudioStream:
    """One reply being generated: PCM16 24 kHz chunks, ``None`` at the end."""

    token: str
    created: float = field(default_factory=time.monotonic)
    chunks: list[bytes] = field(default_factory=list)
    done: bool = False
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def path(self) -> str:
        """Relative URL of the stream."""
        return f"{STREAM_PATH}/{self.token}.wav"

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


class AudioStreams:
    """The streams currently offered over HTTP."""

    def __init__(self) -> None:
        """No streams."""
        self._streams: dict[str, AudioStream] = {}

    def create(self) -> AudioStream:
        """A new stream with a fresh unguessable token."""
        self._expire()
        stream = AudioStream(secrets.token_urlsafe(32))
        self._streams[stream.token] = stream
        return stream

    def get(self, token: str) -> AudioStream | None:
        """The stream for ``token``, if still offered."""
        self._expire()
        return self._streams.get(token)

    def _expire(self) -> None:
        now = time.monotonic()
        for token, stream in list(self._streams.items()):
            if now - stream.created > STREAM_TTL_S:
                stream.end()
                del self._streams[token]


class AudioStreamView(HomeAssistantView):
    """Serves a Live reply while it is generated.

    No HA login: media players fetch it themselves. The URL's 32-byte random token is the
    credential (as with HA's own TTS proxy URLs), and it expires.
    """

    url = STREAM_PATH + "/{token}.wav"
    name = "api:gemini_live:stream"
    requires_auth = False

    def __init__(self, streams: AudioStreams) -> None:
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
        index = 0
        try:
            while True:
                chunks, done = await stream.read(index)
                for chunk in chunks:
                    await response.write(chunk)
                index += len(chunks)
                if done and not chunks:
                    break
        except ConnectionResetError, asyncio.CancelledError:
            LOGGER.debug("Listener of stream %s… went away", token[:6])
            raise
        await response.write_eof()
        return response


@callback
def async_get_streams(hass: HomeAssistant) -> AudioStreams:
    """The shared stream registry (the view is registered once)."""
    streams: AudioStreams | None = hass.data.get(DATA_STREAMS)
    if streams is None:
        streams = hass.data[DATA_STREAMS] = AudioStreams()
        hass.http.register_view(AudioStreamView(streams))
    return streams


async def async_play(
    hass: HomeAssistant, stream: AudioStream, targets: Iterable[str], message: str = ""
) -> None:
    """Play ``stream`` on media players and assist satellites (entity ids)."""
    url = async_process_play_media_url(hass, stream.path)
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
