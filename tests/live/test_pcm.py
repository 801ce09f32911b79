"""Tests of live/pcm.py: resampler quality (against scipy), streaming, PCM16, WAV stream headers.

Resampler quality is measured with single cosine tones on exact FFT bins: each tone is a
multiple of 10 Hz, the signal runs 160 ms, and the middle 100 ms of the output (past the filter
start/end transients) is analysed with a rectangular-window FFT, so the wanted tone falls in
exactly one bin and every other bin holds only what the resampler added (aliases, images,
rounding noise). Levels are in dB relative to the input tone amplitude.

The WAV reader the other tests use (tests/wav_tools.py) is tested here too.
"""

from __future__ import annotations

from collections.abc import Callable
import io
import math
import os
import shutil
import struct
import subprocess
import wave

import numpy as np
from numpy.typing import NDArray
import pytest
from scipy import signal
from scipy.io import wavfile

from custom_components.gemini_live.live.pcm import (
    STREAMING_SIZE,
    Resampler,
    SampleFormat,
    design_resampler,
    pcm16_to_float32,
    wav_header,
)

from ..wav_tools import WavData, parse_wav

RATES = (8000, 16000, 22050, 24000, 44100, 48000)
PAIRS = [(a, b) for a in RATES for b in RATES if a != b]
PAIR_IDS = [f"{a}->{b}" for a, b in PAIRS]

# Specification checked below (independent of the module's own constants).
PASSBAND_EDGE = 0.45  # x min(in, out): 0.9 x the lower Nyquist frequency
PASSBAND_TOLERANCE_DB = 0.5  # |ours - scipy| in the passband
FLATNESS_DB = 0.05  # |ours| in the passband (absolute ripple)
STOPBAND_DB = -60.0  # every alias / image / out-of-band tone, re the input tone
SCIPY_DEFAULT_FLAT_EDGE = 0.44  # x f_min: scipy's default filter droops 0.66 dB by 0.45 f_min

BIN_HZ = 10  # FFT resolution: 100 ms analysis window
PAD_S = 0.03  # ignored output at each end (> every filter's half length)
AMPLITUDE = 0.5

type Float64Array = NDArray[np.float64]
type ResampleFn = Callable[[Float64Array], Float64Array]


def _tone_bank(rate: int, freqs: Float64Array) -> Float64Array:
    """One row per frequency: a cosine of AMPLITUDE with a pseudo-random phase."""
    n = round((2 * PAD_S + 1 / BIN_HZ) * rate)
    t = np.arange(n) / rate
    phases = np.random.default_rng(7).uniform(0, 2 * np.pi, len(freqs))
    return np.asarray(AMPLITUDE * np.cos(2 * np.pi * freqs[:, None] * t + phases[:, None]))


def _analyse(y: Float64Array, out_rate: int) -> Float64Array:
    """Per-bin output level (dB re AMPLITUDE) of the steady-state middle 100 ms of each row."""
    start = round(PAD_S * out_rate)
    seg = y[:, start : start + out_rate // BIN_HZ]
    spectrum = np.abs(np.fft.rfft(seg, axis=1)) * 2.0 / seg.shape[1]
    return np.asarray(20 * np.log10(np.maximum(spectrum, 1e-12) / AMPLITUDE))


def _measure(
    fn: ResampleFn, in_rate: int, out_rate: int, freqs: Float64Array
) -> tuple[Float64Array, Float64Array]:
    """Return (level of the wanted tone, worst other bin) in dB for each input frequency.

    The wanted level is -inf for tones at/above the output Nyquist frequency (nothing is
    wanted there; all of it counts as alias).
    """
    x = _tone_bank(in_rate, freqs)
    levels = _analyse(fn(x), out_rate)
    wanted = np.full(len(freqs), -np.inf)
    spur = np.empty(len(freqs))
    for i, f in enumerate(freqs):
        row = levels[i].copy()
        if f < out_rate / 2:
            b = round(f / BIN_HZ)
            wanted[i] = row[b]
            row[b] = -np.inf
        spur[i] = row.max()
    return wanted, spur


def resample(pcm: bytes | NDArray[np.int16], in_rate: int, out_rate: int) -> bytes:
    """One-shot PCM16 resampling: a fresh streaming resampler, then its flush."""
    resampler = Resampler(in_rate, out_rate)
    return resampler.process(pcm) + resampler.flush()


def resample_float(
    samples: NDArray[np.floating], in_rate: int, out_rate: int
) -> NDArray[np.float32]:
    """One-shot float resampling (float32 out, no clipping)."""
    resampler = Resampler(in_rate, out_rate)
    return np.concatenate((resampler.process_float(samples), resampler.flush_float()))


def _ours(in_rate: int, out_rate: int) -> ResampleFn:
    def run(x: Float64Array) -> Float64Array:
        return np.stack([resample_float(row, in_rate, out_rate) for row in x]).astype(np.float64)

    return run


def _scipy_default(in_rate: int, out_rate: int) -> ResampleFn:
    up, down = out_rate // math.gcd(in_rate, out_rate), in_rate // math.gcd(in_rate, out_rate)
    return lambda x: np.asarray(signal.resample_poly(x, up, down, axis=1))


def _scipy_reference(in_rate: int, out_rate: int) -> ResampleFn:
    """resample_poly with an independent high-quality scipy design (firwin/kaiserord, 90 dB)
    on the same band edges as ours -- the yardstick for the whole passband."""
    g = math.gcd(in_rate, out_rate)
    up, down = out_rate // g, in_rate // g
    nyq = in_rate * up / 2
    f_min = min(in_rate, out_rate)
    width = 0.05 * f_min / nyq
    numtaps, beta = signal.kaiserord(90.0, width)
    numtaps |= 1
    taps = signal.firwin(numtaps, 0.475 * f_min / nyq, window=("kaiser", beta))
    return lambda x: np.asarray(signal.resample_poly(x, up, down, axis=1, window=taps))


def _passband_freqs(in_rate: int, out_rate: int, edge: float = PASSBAND_EDGE) -> Float64Array:
    f_min = min(in_rate, out_rate)
    top = math.floor(edge * f_min / BIN_HZ) * BIN_HZ
    return np.unique(np.round(np.linspace(20, top, 18) / BIN_HZ) * BIN_HZ)


def _reject_freqs(in_rate: int, out_rate: int) -> Float64Array:
    """Transition-band tones (images must still vanish) and, when decimating, every octave of
    the band that must not alias: from just above the new Nyquist to just below the old one."""
    f_min = min(in_rate, out_rate)
    freqs = [0.46 * f_min, 0.48 * f_min, 0.495 * f_min]
    if in_rate > out_rate:
        lo = math.floor(out_rate / 2 / BIN_HZ) * BIN_HZ + BIN_HZ
        hi = math.ceil(in_rate / 2 / BIN_HZ) * BIN_HZ - BIN_HZ
        freqs += [lo, lo + BIN_HZ, *np.linspace(lo, hi, 14), hi]
    return np.unique(np.round(np.asarray(freqs) / BIN_HZ) * BIN_HZ)


# --------------------------------------------------------------------------------------------
# Resampler: frequency response
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS, ids=PAIR_IDS)
def test_passband_matches_scipy(in_rate: int, out_rate: int) -> None:
    """Passband gain within 0.5 dB of scipy's resample_poly, and flat in absolute terms."""
    freqs = _passband_freqs(in_rate, out_rate)
    ours, ours_spur = _measure(_ours(in_rate, out_rate), in_rate, out_rate, freqs)
    ref, _ = _measure(_scipy_reference(in_rate, out_rate), in_rate, out_rate, freqs)
    assert np.max(np.abs(ours - ref)) <= PASSBAND_TOLERANCE_DB, (freqs, ours - ref)
    assert np.max(np.abs(ours)) <= FLATNESS_DB, (freqs, ours)
    # Images of in-band tones are removed too.
    assert np.max(ours_spur) <= STOPBAND_DB, (freqs, ours_spur)

    # scipy's default design (Kaiser beta=5, cutoff at the Nyquist frequency) is only flat to
    # ~0.44 f_min (-0.32 dB there, -0.66 dB at our 0.45 f_min edge): compare up to there.
    flat = _passband_freqs(in_rate, out_rate, SCIPY_DEFAULT_FLAT_EDGE)
    ours_flat, _ = _measure(_ours(in_rate, out_rate), in_rate, out_rate, flat)
    default, _ = _measure(_scipy_default(in_rate, out_rate), in_rate, out_rate, flat)
    assert np.max(np.abs(ours_flat - default)) <= PASSBAND_TOLERANCE_DB, (flat, ours_flat - default)


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS, ids=PAIR_IDS)
def test_stopband_rejection(in_rate: int, out_rate: int) -> None:
    """Tones above the new Nyquist (and images of near-Nyquist tones) are >= 60 dB down."""
    freqs = _reject_freqs(in_rate, out_rate)
    wanted, spur = _measure(_ours(in_rate, out_rate), in_rate, out_rate, freqs)
    assert np.max(spur) <= STOPBAND_DB, dict(
        zip(freqs.tolist(), spur.round(1).tolist(), strict=True)
    )
    above = freqs >= min(in_rate, out_rate) / 2
    assert np.all(np.isneginf(wanted[above]))  # nothing from above the new Nyquist survives
    assert np.all(wanted[~above] < 0.1)


def test_measurement_catches_bad_resamplers() -> None:
    """The checks above can fail: naive decimation aliases, linear interpolation droops/images."""
    freqs = _reject_freqs(48000, 16000)
    _, spur = _measure(lambda x: x[:, ::3], 48000, 16000, freqs)
    assert np.max(spur) > -1.0  # aliases at full level

    def linear_up(x: Float64Array) -> Float64Array:
        t_out = np.arange(x.shape[1] * 3) / 3
        return np.stack([np.interp(t_out, np.arange(x.shape[1]), row) for row in x])

    freqs = _passband_freqs(16000, 48000)
    wanted, spur = _measure(linear_up, 16000, 48000, freqs)
    ref, _ = _measure(_scipy_reference(16000, 48000), 16000, 48000, freqs)
    assert np.max(np.abs(wanted - ref)) > PASSBAND_TOLERANCE_DB
    assert np.max(spur) > STOPBAND_DB


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS, ids=PAIR_IDS)
def test_prototype_filter_response(in_rate: int, out_rate: int) -> None:
    """The designed low-pass itself: flat to 0.45 f_min, >= 60 dB down from 0.5 f_min."""
    design = design_resampler(in_rate, out_rate)
    proto_rate = in_rate * design.up
    n_fft = 1 << max(20, (design.prototype.size * 8 - 1).bit_length())
    response = np.abs(np.fft.rfft(design.prototype / design.up, n_fft))
    freqs = np.fft.rfftfreq(n_fft, 1 / proto_rate)
    f_min = min(in_rate, out_rate)
    db = 20 * np.log10(np.maximum(response, 1e-12))
    assert np.max(np.abs(db[freqs <= PASSBAND_EDGE * f_min])) < 0.01
    assert np.max(db[freqs >= 0.5 * f_min]) < STOPBAND_DB


# --------------------------------------------------------------------------------------------
# Resampler: streaming, alignment, edge cases
# --------------------------------------------------------------------------------------------


def _noise_pcm(n: int, seed: int = 0, scale: float = 6000.0) -> NDArray[np.int16]:
    rng = np.random.default_rng(seed)
    return np.clip(rng.standard_normal(n) * scale, -32768, 32767).astype(np.int16)


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS, ids=PAIR_IDS)
def test_chunked_equals_one_shot(in_rate: int, out_rate: int) -> None:
    """Random chunk sizes (including empty and 1-sample chunks) give the one-shot result."""
    pcm = _noise_pcm(in_rate // 4 + 37, seed=in_rate + out_rate)
    one_shot = np.frombuffer(resample(pcm.tobytes(), in_rate, out_rate), dtype="<i2")
    design = design_resampler(in_rate, out_rate)
    assert one_shot.size == -(-pcm.size * design.up // design.down)

    rng = np.random.default_rng(out_rate)
    r = Resampler(in_rate, out_rate)
    parts: list[bytes] = []
    pos = 0
    while pos < pcm.size:
        n = int(rng.choice([0, 1, 2, 7, int(rng.integers(1, 5000))]))
        chunk = pcm[pos : pos + n]
        parts.append(r.process(chunk.tobytes() if rng.random() < 0.5 else chunk))
        pos += chunk.size
        expected_so_far = max(0, -(-pos * design.up // design.down) - r.latency_samples)
        assert sum(len(p) for p in parts) // 2 == expected_so_far  # held back: exactly the latency
    parts.append(r.flush())
    chunked = np.frombuffer(b"".join(parts), dtype="<i2")
    assert chunked.size == one_shot.size
    assert np.max(np.abs(chunked.astype(int) - one_shot)) <= 1

    # Float path: same, to float32 rounding; the state is reset by flush().
    x = pcm.astype(np.float64) / 32768
    whole = resample_float(x, in_rate, out_rate)
    pieces = [r.process_float(x[i : i + 333]) for i in range(0, x.size, 333)]
    streamed = np.concatenate([*pieces, r.flush_float()])
    np.testing.assert_allclose(streamed, whole, atol=2e-6)


def test_array_input_and_reuse_after_flush() -> None:
    pcm = _noise_pcm(2400)
    r = Resampler(24000, 16000)
    first = r.process(pcm) + r.flush()
    second = r.process(pcm.tobytes()) + r.flush()  # flush() reset the state
    assert len(first) == 2 * 1600
    assert first == second
    assert r.flush() == b""  # nothing pending
    assert r.process(b"") == b""
    assert r.process(np.zeros(0, np.int16)) == b""
    assert r.process_float(np.zeros(0)).size == 0
    assert r.flush_float().size == 0


def test_pcm16_and_float_calls_share_one_state() -> None:
    """process() and process_float() may be mixed on one stream (the TTS paths do)."""
    pcm = _noise_pcm(4800, seed=9)
    one_shot = np.frombuffer(resample(pcm, 24000, 22050), dtype="<i2").astype(int)
    r = Resampler(24000, 22050)
    parts: list[NDArray[np.float64]] = []
    for i, start in enumerate(range(0, pcm.size, 480)):
        chunk = pcm[start : start + 480]
        if i % 2:
            parts.append(np.frombuffer(r.process(chunk), dtype="<i2").astype(np.float64))
        else:
            parts.append(r.process_float(pcm16_to_float32(chunk)).astype(np.float64) * 32768)
    parts.append(r.flush_float().astype(np.float64) * 32768)
    mixed = np.concatenate(parts)
    assert mixed.size == one_shot.size
    assert np.max(np.abs(mixed - one_shot)) <= 1.0


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS, ids=PAIR_IDS)
def test_group_delay_is_compensated(in_rate: int, out_rate: int) -> None:
    """Output is time-aligned with the input, like scipy's resample_poly (no delay shift).

    An impulse at input sample i peaks at output sample i * out/in, symmetrically (linear
    phase), and band-limited noise matches scipy's (high-quality) result sample by sample.
    """
    design = design_resampler(in_rate, out_rate)
    i = design.down * (in_rate // design.down // 20 + 3)  # maps to an integer output index
    impulse = np.zeros(in_rate // 5)
    impulse[i] = 0.5
    y = resample_float(impulse, in_rate, out_rate)
    peak = i * design.up // design.down
    assert int(np.argmax(np.abs(y))) == peak
    k = np.arange(1, 40)
    np.testing.assert_allclose(y[peak + k], y[peak - k], atol=1e-6)

    rng = np.random.default_rng(3)
    noise = rng.standard_normal(in_rate // 4) * 0.1
    band = 0.4 * min(in_rate, out_rate) / (in_rate / 2)
    x = signal.sosfiltfilt(signal.butter(8, band, output="sos"), noise)
    ours = resample_float(x, in_rate, out_rate)
    ref = _scipy_reference(in_rate, out_rate)(x[None, :])[0]
    assert ours.size == ref.size
    mid = slice(ours.size // 10, -ours.size // 10)
    err_db = 20 * np.log10(np.std(ours[mid] - ref[mid]) / np.std(ref[mid]))
    assert err_db < -50  # a one-sample shift would be around -10 dB


def test_silence_stays_silence() -> None:
    for in_rate, out_rate in PAIRS:
        r = Resampler(in_rate, out_rate)
        out = r.process(bytes(2 * in_rate // 10)) + r.flush()
        assert len(out) == 2 * (-(-in_rate // 10 * out_rate // in_rate))
        assert not any(out)


@pytest.mark.parametrize(("in_rate", "out_rate"), [(24000, 16000), (16000, 48000), (48000, 22050)])
def test_full_scale_clips_instead_of_wrapping(in_rate: int, out_rate: int) -> None:
    """A full-scale square wave overshoots (Gibbs); PCM16 output saturates, never wraps."""
    n = in_rate // 5
    square = np.where((np.arange(n) // (in_rate // 200)) % 2 == 0, 32767, -32768).astype(np.int16)
    out = np.frombuffer(resample(square, in_rate, out_rate), dtype="<i2").astype(int)
    unclipped = resample_float(square.astype(np.float64) / 32768, in_rate, out_rate) * 32768
    assert unclipped.max() > 32767.5
    assert unclipped.min() < -32768.5
    expected = np.clip(np.rint(unclipped), -32768, 32767)
    assert np.max(np.abs(out - expected)) <= 1
    assert out.max() == 32767
    assert out.min() == -32768
    # No wrap-around: wherever the true signal is strongly positive the output is too.
    assert np.all(out[unclipped > 16000] > 16000)
    assert np.all(out[unclipped < -16000] < -16000)


def test_passthrough_and_cache() -> None:
    pcm = _noise_pcm(1000).tobytes()
    r = Resampler(16000, 16000)
    assert r.latency_samples == 0
    assert r.latency_seconds == 0.0
    assert r.process(pcm) == pcm
    assert r.process(np.frombuffer(pcm, np.int16)) == pcm
    for view in (bytearray(pcm), memoryview(pcm)):
        out = r.process(view)
        assert type(out) is bytes
        assert out == pcm
    with pytest.raises(ValueError, match="odd number of bytes"):
        r.process(b"\x00\x01\x02")
    assert r.flush() == b""
    np.testing.assert_array_equal(r.process_float(np.ones(3)), np.ones(3, np.float32))
    assert r.flush_float().size == 0

    design = design_resampler(24000, 16000)
    misses = design_resampler.cache_info().misses
    r1, r2 = Resampler(24000, 16000), Resampler(24000, 16000)
    r1.process(pcm)
    r2.process_float(np.ones(3))
    assert design_resampler(24000, 16000) is design
    assert design_resampler.cache_info().misses == misses  # no new design per resampler
    assert not design.weights.flags.writeable  # shared, so read-only
    assert r1.latency_samples == design.delay > 0
    assert r1.latency_seconds == pytest.approx(design.delay / 16000)
    assert r1.latency_seconds == pytest.approx(0.0025)
    # The figures the module docstring gives.
    assert Resampler(16000, 48000).latency_seconds == pytest.approx(0.0025)
    assert Resampler(48000, 8000).latency_seconds == pytest.approx(0.005)


def test_resampler_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="positive"):
        Resampler(0, 16000)
    with pytest.raises(ValueError, match="too large"):
        Resampler(16001, 48000)
    r = Resampler(24000, 16000)
    with pytest.raises(ValueError, match="odd number of bytes"):
        r.process(b"\x00\x01\x02")
    with pytest.raises(TypeError, match="int16"):
        r.process(np.zeros(4, np.float32))


# --------------------------------------------------------------------------------------------
# PCM16
# --------------------------------------------------------------------------------------------


def test_pcm16_to_float32_is_exact() -> None:
    every = np.arange(-32768, 32768, dtype=np.int16)
    as_float = pcm16_to_float32(every.tobytes())
    assert as_float.dtype == np.float32
    assert as_float[0] == -1.0
    assert as_float[-1] == pytest.approx(32767 / 32768)
    np.testing.assert_array_equal(np.rint(as_float * 32768).astype(np.int16), every)  # lossless
    np.testing.assert_array_equal(pcm16_to_float32(every), as_float)
    np.testing.assert_array_equal(
        pcm16_to_float32(memoryview(bytearray(every.tobytes()))), as_float
    )
    with pytest.raises(ValueError, match="odd number of bytes"):
        pcm16_to_float32(b"\x00")


# --------------------------------------------------------------------------------------------
# WAV stream headers (and the tests' WAV reader)
# --------------------------------------------------------------------------------------------


def _ffmpeg() -> str | None:
    """The ffmpeg HA would use in the tests (see devtools/ha_voice.py), or None."""
    if override := os.environ.get("GEMINI_LIVE_FFMPEG"):
        return override
    try:
        import imageio_ffmpeg  # type: ignore[import-untyped]
    except ImportError:
        return shutil.which("ffmpeg")
    path: str = imageio_ffmpeg.get_ffmpeg_exe()
    return path


def test_pcm16_stream_header() -> None:
    pcm = _noise_pcm(500).tobytes()
    header = wav_header(16000)
    assert header == wav_header(16000, 1, SampleFormat.PCM16)
    assert struct.unpack("<4sI4s4sIHHIIHH4sI", header) == (
        b"RIFF",
        STREAMING_SIZE,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        1,
        16000,
        32000,
        2,
        16,
        b"data",
        STREAMING_SIZE,
    )
    assert parse_wav(header + pcm + b"\x01") == WavData(16000, 1, 2, 1, pcm)  # partial frame cut
    rate, channels, width, tag, body = parse_wav(header + pcm)  # plain tuple unpacking works
    assert (rate, channels, width, tag, body) == (16000, 1, 2, 1, pcm)
    with wave.open(io.BytesIO(header + pcm)) as w:  # the stdlib reader copes
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        assert w.readframes(10_000) == pcm

    # Apart from the two sizes, byte-identical to what the wave module writes (stereo here).
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(24000)
        w.writeframes(pcm[:400])
    written = buf.getvalue()
    stereo = wav_header(24000, 2)
    assert len(stereo) == 44
    assert stereo[:4] + stereo[8:40] == written[:4] + written[8:40]
    assert parse_wav(written) == WavData(24000, 2, 2, 1, pcm[:400])


@pytest.mark.parametrize(
    ("sample_format", "dtype"), [(SampleFormat.FLOAT32, "<f4"), (SampleFormat.FLOAT64, "<f8")]
)
def test_float_stream_header(sample_format: SampleFormat, dtype: str) -> None:
    samples = np.linspace(-1, 1, 480).astype(dtype)
    width = samples.itemsize
    header = wav_header(48000, 1, sample_format)
    assert len(header) == 58
    (riff, riff_size, wave_id, fmt_id, fmt_size, tag, ch, rate, byte_rate, align, bits, cb) = (
        struct.unpack_from("<4sI4s4sIHHIIHHH", header, 0)
    )
    assert (riff, riff_size, wave_id, fmt_id) == (b"RIFF", STREAMING_SIZE, b"WAVE", b"fmt ")
    assert (fmt_size, tag, ch, rate, byte_rate, align, bits, cb) == (
        18,
        3,  # IEEE float
        1,
        48000,
        48000 * width,
        width,
        8 * width,
        0,
    )
    assert struct.unpack_from("<4sII", header, 38) == (b"fact", 4, 0)  # 0 = unknown length
    assert struct.unpack_from("<4sI", header, 50) == (b"data", STREAMING_SIZE)

    parsed = parse_wav(header + samples.tobytes())
    assert parsed[:4] == (48000, 1, width, 3)
    np.testing.assert_array_equal(np.frombuffer(parsed.pcm, dtype), samples)
    # An independent reader: scipy's (it warns that the stream is shorter than the header says).
    with pytest.warns(wavfile.WavFileWarning, match="Reached EOF prematurely"):
        scipy_rate, scipy_samples = wavfile.read(io.BytesIO(header + samples.tobytes()))
    assert scipy_rate == 48000
    np.testing.assert_array_equal(scipy_samples, samples)
    # The stdlib wave module cannot read IEEE float (hence the field-by-field check above).
    with pytest.raises(wave.Error, match="unknown format: 3"), wave.open(io.BytesIO(header)):
        pass


@pytest.mark.parametrize(
    ("sample_format", "dtype"),
    [(SampleFormat.PCM16, "<i2"), (SampleFormat.FLOAT32, "<f4"), (SampleFormat.FLOAT64, "<f8")],
)
def test_ffmpeg_reads_stream(sample_format: SampleFormat, dtype: str) -> None:
    """HA hands our WAV streams to ffmpeg: it must decode every sample, to the end of the pipe."""
    ffmpeg = _ffmpeg()
    if ffmpeg is None:
        pytest.skip("no ffmpeg (neither imageio-ffmpeg nor one on PATH)")
    wave_ = np.sin(np.arange(4800) / 10)
    samples = (np.rint(wave_ * 20000) if dtype == "<i2" else wave_).astype(dtype)
    # No timeout= here: its wait loop calls time.sleep, which HA's blocking-call detector (on for
    # every test, see tests/conftest.py) rejects. pytest-timeout catches a hung ffmpeg.
    result = subprocess.run(
        [ffmpeg, "-v", "error", "-f", "wav", "-i", "pipe:0", "-f", sample_format.value, "pipe:1"],
        input=wav_header(48000, 1, sample_format) + samples.tobytes(),
        capture_output=True,
        check=True,
    )
    np.testing.assert_array_equal(np.frombuffer(result.stdout, dtype), samples)


def test_wav_header_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="sample rate"):
        wav_header(0)
    with pytest.raises(ValueError, match="channel"):
        wav_header(16000, 0)
    with pytest.raises(ValueError, match="byte rate"):
        wav_header(0xFFFFFFFF, 1, SampleFormat.FLOAT64)


def _chunk(chunk_id: bytes, body: bytes) -> bytes:
    return chunk_id + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)


def _riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


FMT_PCM16_MONO = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)


def test_parse_sized_files_and_extra_chunks() -> None:
    pcm = _noise_pcm(10).tobytes()
    data = _riff(
        _chunk(b"JUNK", b"\0" * 7),  # odd size: pad byte
        _chunk(b"fmt ", FMT_PCM16_MONO),
        _chunk(b"LIST", b"INFOISFT" + struct.pack("<I", 5) + b"test\0\0"),
        _chunk(b"data", pcm),
        _chunk(b"LIST", b"INFO"),
    )
    assert parse_wav(data) == WavData(8000, 1, 2, 1, pcm)
    assert parse_wav(memoryview(bytearray(data))) == WavData(8000, 1, 2, 1, pcm)
    # 8-bit mono with an odd data size (and its pad byte).
    fmt_u8 = struct.pack("<HHIIHH", 1, 1, 8000, 8000, 1, 8)
    odd = _riff(_chunk(b"fmt ", fmt_u8), _chunk(b"data", b"\x80\x81\x82"))
    assert parse_wav(odd) == WavData(8000, 1, 1, 1, b"\x80\x81\x82")
    # A sized float file as sox/ffmpeg write them (fmt with cbSize, fact, data, then more).
    body = np.linspace(-1, 1, 6, dtype="<f4").tobytes()
    fmt_f32 = struct.pack("<HHIIHHH", 3, 1, 24000, 96000, 4, 32, 0)
    sized = _riff(
        _chunk(b"fmt ", fmt_f32),
        _chunk(b"fact", struct.pack("<I", 6)),
        _chunk(b"data", body),
        _chunk(b"LIST", b"INFO"),
    )
    assert parse_wav(sized) == WavData(24000, 1, 4, 3, body)
    # Some writers stream with 0 sizes instead of 0xFFFFFFFF.
    zeroed = bytearray(wav_header(16000))
    zeroed[4:8] = zeroed[40:44] = bytes(4)
    assert parse_wav(bytes(zeroed) + pcm).pcm == pcm


def test_parse_wave_format_extensible() -> None:
    guid_float = struct.pack("<H", 3) + bytes.fromhex("000000001000800000aa00389b71")
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 2, 48000, 384000, 8, 32, 22, 32, 3) + guid_float
    body = np.zeros(8, "<f4").tobytes()
    assert parse_wav(_riff(_chunk(b"fmt ", fmt), _chunk(b"data", body))) == WavData(
        48000, 2, 4, 3, body
    )
    bad_guid = fmt[:-16] + bytes(16)
    with pytest.raises(ValueError, match="GUID"):
        parse_wav(_riff(_chunk(b"fmt ", bad_guid), _chunk(b"data", body)))
    with pytest.raises(ValueError, match="EXTENSIBLE"):
        parse_wav(_riff(_chunk(b"fmt ", fmt[:30]), _chunk(b"data", body)))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "only 0 bytes"),
        (b"RIFF\x04\x00\x00\x00WAV", "only 11 bytes"),
        (b"RIFX" + bytes(4) + b"WAVE", "big-endian"),
        (b"RF64" + bytes(4) + b"WAVE", "RF64"),
        (b"RIFF" + bytes(4) + b"AVI ", "signature"),
        (b"OggS" + bytes(20), "signature"),
        (_riff(_chunk(b"data", b"\0\0")), "before any 'fmt '"),
        (_riff(_chunk(b"fmt ", FMT_PCM16_MONO)), "no 'data'"),
        (_riff(_chunk(b"LIST", b"INFO")), "no 'fmt '"),
        (_riff(_chunk(b"fmt ", FMT_PCM16_MONO[:14])), "too short"),
        (_riff(_chunk(b"fmt ", FMT_PCM16_MONO))[:-4], "truncated 'fmt '"),
        (
            _riff(_chunk(b"fmt ", FMT_PCM16_MONO), _chunk(b"data", bytes(8)))[:-2],
            "truncated 'data'",
        ),
        (_riff(_chunk(b"LIST", bytes(10)))[:-3], "truncated b'LIST'"),
        (_riff(_chunk(b"fmt ", FMT_PCM16_MONO), _chunk(b"data", bytes(3))), "whole number"),
        (
            _riff(_chunk(b"fmt ", struct.pack("<HHIIHH", 0x55, 1, 8000, 1000, 1, 0))),
            "format tag 0x0055",
        ),
        (_riff(_chunk(b"fmt ", struct.pack("<HHIIHH", 1, 0, 8000, 0, 0, 16))), "0 channels"),
        (_riff(_chunk(b"fmt ", struct.pack("<HHIIHH", 1, 1, 0, 0, 2, 16))), "0 Hz"),
        (_riff(_chunk(b"fmt ", struct.pack("<HHIIHH", 1, 1, 8000, 0, 2, 12))), "bits"),
        (_riff(_chunk(b"fmt ", struct.pack("<HHIIHH", 1, 2, 8000, 0, 2, 16))), "block align"),
        (_riff(_chunk(b"fmt ", struct.pack("<HHIIHH", 3, 1, 8000, 0, 2, 16))), "IEEE float"),
    ],
)
def test_parse_rejects_malformed(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_wav(data)
