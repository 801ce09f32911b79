"""The reply's stream formats: FLAC frames as Gemini speaks, WAV, and which one HA is handed."""

from __future__ import annotations

import subprocess

from homeassistant.components import tts
import numpy as np
import pytest

from custom_components.gemini_live.live.pcm import Resampler
from custom_components.gemini_live.runtime.reply_audio import (
    FLAC_FRAME_MS,
    PREFERRED_FORMAT_PASSTHROUGH,
    FlacEncoder,
    WavEncoder,
    open_flac,
    reply_encoder,
    silence,
)

from .wav_tools import parse_wav

RATE_IN = 24000


def speech_like(seconds: float, seed: int = 1) -> bytes:
    """24 kHz PCM16: two tones and some noise."""
    t = np.arange(int(RATE_IN * seconds)) / RATE_IN
    rng = np.random.default_rng(seed)
    x = 6000 * np.sin(2 * np.pi * 220 * t) + 3000 * np.sin(2 * np.pi * 1250 * t)
    return (x + rng.normal(0, 400, t.size)).astype("<i2").tobytes()


def ffmpeg_decode(data: bytes, channels: int) -> np.ndarray:
    """Any audio -> int16 samples at the stream's own rate (ffmpeg from imageio-ffmpeg)."""
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    out = subprocess.run(
        [
            *(imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error"),
            *("-i", "pipe:0", "-f", "s16le", "-ac", str(channels), "pipe:1"),
        ],
        input=data,
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(out, dtype="<i2")


@pytest.mark.parametrize(("rate", "channels"), [(48000, 1), (16000, 1), (44100, 2)])
def test_flac_stream_is_lossless_and_chunked_like_one_shot(rate: int, channels: int) -> None:
    """Header + chunks of any size + flush decode to exactly the resampled audio."""
    pcm = speech_like(1.3)
    encoder = FlacEncoder(rate, channels)
    stream = encoder.header()
    assert stream[:4] == b"fLaC"
    for start in range(0, len(pcm), 4410 * 2):  # uneven chunks, as Gemini sends them
        stream += encoder.encode(pcm[start : start + 4410 * 2])
    stream += encoder.flush()

    decoded = ffmpeg_decode(stream, channels)
    resampler = Resampler(RATE_IN, rate)
    expected = np.frombuffer(resampler.process(pcm) + resampler.flush(), dtype="<i2")
    expected = np.repeat(expected, channels)
    assert decoded.size == expected.size
    assert np.array_equal(decoded, expected)  # FLAC is lossless: the very same samples
    assert len(stream) < expected.size * 2  # and smaller than the samples


def test_flac_frames_leave_as_soon_as_a_block_is_full() -> None:
    """A 20 ms block goes out when its last sample arrives, not later."""
    encoder = FlacEncoder(48000)
    encoder.header()
    half_block = bytes(RATE_IN * FLAC_FRAME_MS // 2000 * 2)  # 10 ms of Gemini's audio
    first = encoder.encode(speech_like(FLAC_FRAME_MS / 2000))
    assert first == b""  # half a block: held
    second = encoder.encode(half_block + half_block)  # now 1.5 blocks (minus the filter delay)
    assert second[:2] == b"\xff\xf8"  # a FLAC frame (sync code, fixed block size)
    assert encoder.flush()  # the rest


def test_keepalive_silence_encodes_to_audio_of_its_length() -> None:
    """Silence while tools run is real audio in the stream's own format."""
    encoder = WavEncoder(22050)
    wav = parse_wav(encoder.header() + encoder.encode(silence(100)) + encoder.flush())
    assert (wav.rate, wav.channels, wav.sample_width) == (22050, 1, 2)
    assert len(wav.pcm) == 2205 * 2
    assert not any(wav.pcm)


def test_wav_stereo_duplicates_the_voice() -> None:
    """A consumer asking for two channels gets the voice on both."""
    encoder = WavEncoder(16000, 2)
    wav = parse_wav(encoder.header() + encoder.encode(speech_like(0.2)) + encoder.flush())
    assert (wav.rate, wav.channels) == (16000, 2)
    samples = np.frombuffer(wav.pcm, dtype="<i2").reshape(-1, 2)
    assert np.array_equal(samples[:, 0], samples[:, 1])
    assert int(np.abs(samples).max()) > 1000


@pytest.mark.skipif(not PREFERRED_FORMAT_PASSTHROUGH, reason="HA 2026.10 converts every stream")
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        # Wyoming satellites: 22.05 kHz mono 16-bit WAV, handed on without ffmpeg.
        ({"preferred_format": "wav", "preferred_sample_rate": 22050}, ("wav", 22050, 1)),
        # A Voice PE's announcement format: FLAC 48 kHz mono, encoded here.
        (
            {
                "preferred_format": "flac",
                "preferred_sample_rate": 48000,
                "preferred_sample_channels": 1,
                "preferred_sample_bytes": 2,
            },
            ("flac", 48000, 1),
        ),
        ({"preferred_format": "flac"}, ("flac", 48000, 1)),
        ({"preferred_format": "flac", "preferred_sample_channels": 2}, ("flac", 48000, 2)),
        ({}, ("wav", 24000, 1)),  # nothing asked for: Gemini's own rate
        # Formats we do not write: another container, so that HA converts.
        ({"preferred_format": "mp3", "preferred_sample_rate": 44100}, ("wav", 44100, 1)),
        ({"preferred_format": "wav", "preferred_sample_bytes": 4}, ("flac", 24000, 1)),
        ({"preferred_format": "flac", "preferred_sample_bytes": 3}, ("wav", 24000, 1)),
        ({"preferred_format": "wav", "preferred_sample_channels": 6}, ("flac", 24000, 1)),
    ],
)
def test_the_stream_ha_hands_on_or_converts(
    options: dict[str, object], expected: tuple[str, int, int]
) -> None:
    """HA 2026.11+ converts only a stream whose extension differs from the preferred one."""
    options = {getattr(tts, f"ATTR_{k.upper()}"): v for k, v in options.items()}
    encoder = reply_encoder(options)
    assert (encoder.extension, encoder.rate, encoder.channels) == expected


@pytest.mark.skipif(PREFERRED_FORMAT_PASSTHROUGH, reason="HA 2026.11+ takes the preferred format")
def test_float_wav_where_ha_always_converts() -> None:
    """HA 2026.10: 48 kHz float64 WAV, which its ffmpeg starts converting at once."""
    encoder = reply_encoder({tts.ATTR_PREFERRED_FORMAT: "flac"})
    wav = parse_wav(encoder.header() + encoder.encode(speech_like(0.1)) + encoder.flush())
    assert (wav.rate, wav.format_tag, wav.sample_width) == (48000, 3, 8)


@pytest.mark.parametrize(("opened_rate", "uses_it"), [(48000, True), (16000, False)])
def test_flac_encoder_opened_ahead_is_used_in_its_format_only(
    opened_rate: int, uses_it: bool
) -> None:
    """An encoder opened ahead serves a reply of its format; another format gets its own; the
    stream decodes to the same samples either way."""
    opened = open_flac(opened_rate)
    encoder = FlacEncoder(48000, 1, opened)
    assert (encoder._codec is opened.codec) is uses_it
    pcm = speech_like(0.5)
    stream = encoder.header() + encoder.encode(pcm) + encoder.flush()
    resampler = Resampler(RATE_IN, 48000)
    expected = np.frombuffer(resampler.process(pcm) + resampler.flush(), dtype="<i2")
    assert np.array_equal(ffmpeg_decode(stream, 1), expected)
