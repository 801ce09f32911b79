"""A reply's audio in the format its listener asked for, by the shortest path.

Gemini speaks 24 kHz PCM16. A TTS consumer (a satellite through the assist pipeline, a media
player) asks HA for a format with the ``preferred_*`` options; which stream we hand HA decides
whether HA runs ffmpeg on it, and ffmpeg is most of the latency we would add:

- HA 2026.11+ passes a stream through untouched when its format is the preferred one and the
  engine declared the preferred options (ours does), so we produce that format ourselves:

  - ``wav`` (Wyoming: 22.05 kHz, ESPHome API audio: 16 kHz): 16-bit PCM at the rate asked for;
  - ``flac`` (a Voice PE's announcement format, 48 kHz): FLAC frames of 20 ms encoded here
    with PyAV (libavcodec's FLAC encoder, the library HA's ``stream`` integration ships),
    instead of HA spawning ffmpeg, whose encoder also holds back 96 ms blocks at 48 kHz;
  - anything else (mp3, other widths or channel counts): 16-bit WAV, which HA converts.

- HA 2026.10 converts every stream with ffmpeg once a sample rate is asked for; its WAV reader
  starts at once on a 48 kHz float64 stream (a 16-bit one is held back 64 KiB).

Opening a FLAC encoder costs about 4 ms of the event loop (libavcodec allocates and zeroes
~7 MB, holding the GIL, so an executor would not help). Opened when the model starts answering,
it would add that to every reply, and satellites answered at the same moment would queue behind
each other's. So a voice run opens its reply's encoder while the user still speaks
(:func:`open_flac`, in the format the agent's previous FLAC reply used) and the reply takes it
(:class:`OpenedFlac`); an unused one goes with its run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import av
from av.audio.frame import AudioFrame
from homeassistant.components import tts
import numpy as np

from ..live.messages import OUTPUT_AUDIO_RATE
from ..live.pcm import Resampler, SampleFormat, pcm16_to_float32, wav_header

# HA 2026.11+ skips ffmpeg for a stream already in the preferred format (see above).
PREFERRED_FORMAT_PASSTHROUGH: Final = hasattr(tts, "PcmFormat")
FLOAT_STREAM_RATE: Final = 48000  # HA 2026.10: see the module docstring
FLAC_FRAME_MS: Final = 20
FLAC_DEFAULT_RATE: Final = 48000


class ReplyEncoder(Protocol):
    """Turns Gemini's 24 kHz PCM16 chunks into one stream of the consumer's format."""

    extension: str
    rate: int
    channels: int

    def header(self) -> bytes:
        """The stream's first bytes (before any audio)."""

    def encode(self, pcm16: bytes) -> bytes:
        """One chunk of Gemini's audio, encoded (may be empty while a frame fills)."""

    def flush(self) -> bytes:
        """Everything still held back; the stream ends after it."""


def silence(ms: int) -> bytes:
    """``ms`` of silence as Gemini's audio (24 kHz PCM16), for an encoder to encode."""
    return bytes(OUTPUT_AUDIO_RATE * ms // 1000 * 2)


def _channels(pcm16: bytes, channels: int) -> bytes:
    """Mono PCM16 as ``channels`` identical interleaved channels."""
    if channels == 1:
        return pcm16
    return np.repeat(np.frombuffer(pcm16, dtype="<i2"), channels).tobytes()


class WavEncoder:
    """An endless WAV stream: PCM16 at ``rate``, or float64 (see the module docstring)."""

    extension = "wav"

    def __init__(
        self, rate: int, channels: int = 1, sample_format: SampleFormat = SampleFormat.PCM16
    ) -> None:
        """Resample to ``rate`` and write ``sample_format`` samples on ``channels`` channels."""
        self.rate = rate
        self.channels = channels
        self.sample_format = sample_format
        self._resampler = Resampler(OUTPUT_AUDIO_RATE, rate)

    def header(self) -> bytes:
        """The WAV header of an endless stream."""
        return wav_header(self.rate, self.channels, self.sample_format)

    def encode(self, pcm16: bytes) -> bytes:
        """Resampled samples."""
        if self.sample_format is SampleFormat.PCM16:
            return _channels(self._resampler.process(pcm16), self.channels)
        return self._as_float64(self._resampler.process_float(pcm16_to_float32(pcm16)))

    def flush(self) -> bytes:
        """The resampler's tail."""
        if self.sample_format is SampleFormat.PCM16:
            return _channels(self._resampler.flush(), self.channels)
        return self._as_float64(self._resampler.flush_float())

    def _as_float64(self, samples: np.ndarray) -> bytes:
        return np.repeat(samples.astype("<f8"), self.channels).tobytes()


@dataclass(frozen=True, slots=True)
class OpenedFlac:
    """A FLAC encoder opened ahead of the reply that uses it."""

    rate: int
    channels: int
    codec: av.AudioCodecContext


def open_flac(rate: int, channels: int = 1) -> OpenedFlac:
    """Open libavcodec's FLAC encoder for 16-bit ``rate`` Hz audio (about 4 ms, see above)."""
    codec = av.CodecContext.create("flac", "w")
    assert isinstance(codec, av.AudioCodecContext)
    codec.sample_rate = rate
    codec.format = "s16"
    codec.layout = "mono" if channels == 1 else "stereo"
    # Small blocks for latency; level 0 (fixed predictors): ~1 % of a core, 26 % smaller
    # than the samples (a reply streams over the LAN, as HA's ffmpeg would send it).
    codec.options = {
        "frame_size": str(rate * FLAC_FRAME_MS // 1000),
        "compression_level": "0",
    }
    codec.open()
    return OpenedFlac(rate, channels, codec)


class FlacEncoder:
    """A 16-bit FLAC stream of fixed 20 ms blocks, written as Gemini speaks."""

    extension = "flac"

    def __init__(self, rate: int, channels: int = 1, opened: OpenedFlac | None = None) -> None:
        """Resample to ``rate``; use ``opened`` if it has this format, else open an encoder."""
        self.rate = rate
        self.channels = channels
        self._layout = "mono" if channels == 1 else "stereo"
        self._resampler = Resampler(OUTPUT_AUDIO_RATE, rate)
        if opened is None or (opened.rate, opened.channels) != (rate, channels):
            opened = open_flac(rate, channels)
        self._codec = opened.codec
        self._pts = 0

    def header(self) -> bytes:
        """``fLaC`` and the STREAMINFO block (the last metadata block; length unknown)."""
        streaminfo = bytes(self._codec.extradata or b"")
        if len(streaminfo) != 34:
            raise RuntimeError(f"FLAC encoder gave {len(streaminfo)} bytes of STREAMINFO")
        return b"fLaC" + bytes((0x80, 0, 0, len(streaminfo))) + streaminfo

    def encode(self, pcm16: bytes) -> bytes:
        """The FLAC frames completed by this chunk."""
        return self._encode(self._resampler.process(pcm16))

    def flush(self) -> bytes:
        """The last (shorter) frame."""
        tail = self._encode(self._resampler.flush())
        return tail + b"".join(bytes(packet) for packet in self._codec.encode(None))

    def _encode(self, pcm16: bytes) -> bytes:
        if not pcm16:
            return b""
        samples = np.frombuffer(_channels(pcm16, self.channels), dtype="<i2")
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout=self._layout)
        frame.sample_rate = self.rate
        frame.pts = self._pts
        self._pts += samples.size // self.channels
        return b"".join(bytes(packet) for packet in self._codec.encode(frame))


def reply_encoder(
    options: Mapping[str, Any], opened_flac: OpenedFlac | None = None
) -> ReplyEncoder:
    """The encoder whose stream HA hands on with the least work (see the module docstring).

    On HA 2026.11+ HA converts only a stream whose extension differs from the preferred
    format (we declare every preferred option), so a format we do not write ourselves (mp3,
    a sample width other than 16 bits, more than two channels) is handed over in another
    container, which makes HA convert it. ``opened_flac``: an encoder opened ahead, used if
    the reply is FLAC in its format.
    """
    if not PREFERRED_FORMAT_PASSTHROUGH:
        return WavEncoder(FLOAT_STREAM_RATE, 1, SampleFormat.FLOAT64)
    wanted = options.get(tts.ATTR_PREFERRED_FORMAT) or "wav"
    rate = int(options.get(tts.ATTR_PREFERRED_SAMPLE_RATE) or 0)
    channels = int(options.get(tts.ATTR_PREFERRED_SAMPLE_CHANNELS) or 1)
    ours = channels in (1, 2) and int(options.get(tts.ATTR_PREFERRED_SAMPLE_BYTES) or 2) == 2
    if wanted == "flac" and ours:
        return FlacEncoder(rate or FLAC_DEFAULT_RATE, channels, opened_flac)
    if wanted == "wav" and not ours:
        # converted by HA (another extension)
        return FlacEncoder(rate or OUTPUT_AUDIO_RATE, 1, opened_flac)
    if wanted == "wav":
        return WavEncoder(rate or OUTPUT_AUDIO_RATE, channels)
    return WavEncoder(rate or OUTPUT_AUDIO_RATE)  # converted by HA (another extension)
