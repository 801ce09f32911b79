"""Tests of the numpy PCM helpers: resampler quality (against scipy), streaming, WAV, chunking.

Resampler quality is measured with single cosine tones on exact FFT bins: each tone is a
multiple of 10 Hz, the signal runs 160 ms, and the middle 100 ms of the output (past the filter
start/end transients) is analysed with a rectangular-window FFT, so the wanted tone falls in
exactly one bin and every other bin holds only what the resampler added (aliases, images,
rounding noise). Levels are in dB relative to the input tone amplitude.
"""

from __future__ import annotations

from collections.abc import Callable
import io
import math
import shutil
import struct
import subprocess
import wave

import numpy as np
from numpy.typing import NDArray
import pytest
from scipy import signal

from custom_components.gemini_live.live.audio import (
    DBFS_FLOOR,
    STREAMING_SIZE,
    PcmChunker,
    Resampler,
    SampleFormat,
    WavData,
    apply_gain,
    build_wav,
    chunk_pcm,
    design_resampler,
    downmix_to_mono,
    float32_bytes_to_pcm16,
    float32_to_int16,
    float32_to_pcm16,
    frame_bytes_for,
    parse_wav,
    pcm16_to_float32,
    resample,
    resample_float,
    rms_dbfs,
    rms_level,
    to_float32_bytes,
    wav_header,
)

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
    n_fft = 1 << max(20, (design.taps * 8 - 1).bit_length())
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
        expected_so_far = max(0, -(-pos * design.up // design.down) - design.delay)
        assert sum(len(p) for p in parts) // 2 == expected_so_far  # latency is exactly `delay`
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


def test_process_array_and_reuse_after_flush() -> None:
    pcm = _noise_pcm(2400)
    r = Resampler(24000, 16000)
    first = np.concatenate([r.process_array(pcm), np.frombuffer(r.flush(), dtype="<i2")])
    second = np.concatenate([r.process_array(pcm.tobytes()), np.frombuffer(r.flush(), "<i2")])
    np.testing.assert_array_equal(first, second)
    assert r.flush() == b""  # nothing pending
    assert r.process(b"") == b""
    assert r.process_array(np.zeros(0, np.int16)).size == 0
    assert r.process_float(np.zeros(0)).size == 0


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
    assert r.passthrough
    assert r.design is None
    assert r.latency_samples == 0
    assert r.process(pcm) == pcm
    assert r.process(np.frombuffer(pcm, np.int16)) == pcm
    assert r.flush() == b""
    np.testing.assert_array_equal(r.process_float(np.ones(3)), np.ones(3, np.float32))
    assert resample(pcm, 16000, 16000) == pcm

    design_resampler(24000, 16000)
    misses = design_resampler.cache_info().misses
    r1, r2 = Resampler(24000, 16000), Resampler(24000, 16000)
    assert r1.design is r2.design
    r1.process(pcm)
    assert design_resampler.cache_info().misses == misses
    assert r1.design is not None
    assert not r1.design.weights.flags.writeable  # shared, so read-only
    assert r1.latency_seconds == pytest.approx(r1.latency_samples / 16000)


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
# PCM helpers
# --------------------------------------------------------------------------------------------


def test_pcm16_float_round_trip_is_exact() -> None:
    every = np.arange(-32768, 32768, dtype=np.int16)
    as_float = pcm16_to_float32(every.tobytes())
    assert as_float.dtype == np.float32
    assert as_float[0] == -1.0
    assert as_float[-1] == pytest.approx(32767 / 32768)
    assert float32_to_pcm16(as_float) == every.tobytes()
    np.testing.assert_array_equal(float32_to_int16(as_float), every)


def test_float_to_pcm16_clips_and_rounds() -> None:
    values = np.array([2.0, 1.0, -1.0, -3.0, 0.5 / 32768 * 1.01, -1.4 / 32768, np.float32(1e9)])
    out = np.frombuffer(float32_to_pcm16(values), dtype="<i2")
    np.testing.assert_array_equal(out, [32767, 32767, -32768, -32768, 1, -1, 32767])


def test_float32_bytes_conversions() -> None:
    pcm = np.array([0, 16384, -32768, 32767], dtype=np.int16)
    f32 = to_float32_bytes(pcm.tobytes())
    assert len(f32) == 16
    np.testing.assert_array_equal(
        np.frombuffer(f32, "<f4"), np.array([0, 0.5, -1, 32767 / 32768], np.float32)
    )
    assert to_float32_bytes(pcm) == f32
    assert float32_bytes_to_pcm16(f32) == pcm.tobytes()
    with pytest.raises(ValueError, match="multiple of 4"):
        float32_bytes_to_pcm16(b"\x00" * 6)


def test_downmix_to_mono() -> None:
    stereo = np.array([1000, 3000, 32767, 32767, -32768, -32768, -3, 0], dtype=np.int16)
    mono = np.frombuffer(downmix_to_mono(stereo.tobytes()), "<i2")
    np.testing.assert_array_equal(mono, [2000, 32767, -32768, -2])  # -1.5 rounds to even
    quad = np.array([4, 8, 12, 16], dtype=np.int16)
    assert np.frombuffer(downmix_to_mono(quad, channels=4), "<i2").tolist() == [10]
    assert downmix_to_mono(quad.tobytes(), channels=1) == quad.tobytes()
    with pytest.raises(ValueError, match="whole number"):
        downmix_to_mono(np.zeros(3, np.int16))
    with pytest.raises(ValueError, match="channels"):
        downmix_to_mono(b"", channels=0)


def test_levels() -> None:
    square = np.array([32767, -32768] * 100, dtype=np.int16)
    assert rms_level(square) == pytest.approx(1.0, abs=1e-4)
    assert rms_dbfs(square) == pytest.approx(0.0, abs=1e-3)
    t = np.arange(16000) / 16000
    sine = np.rint(0.5 * 32768 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    assert rms_level(sine.tobytes()) == pytest.approx(0.5 / math.sqrt(2), rel=1e-4)
    assert rms_dbfs(sine) == pytest.approx(20 * math.log10(0.5) - 3.0103, abs=0.01)
    assert rms_dbfs(bytes(320)) == DBFS_FLOOR
    assert rms_dbfs(b"") == DBFS_FLOOR
    assert rms_level(b"") == 0.0
    assert rms_dbfs(np.array([1, 0, 0, 0], np.int16), floor_db=-60.0) == -60.0


def test_apply_gain() -> None:
    pcm = np.array([1000, -1000, 20000, -20000, 0], dtype=np.int16)
    louder = np.frombuffer(apply_gain(pcm.tobytes(), 20 * math.log10(2)), "<i2")
    np.testing.assert_array_equal(louder, [2000, -2000, 32767, -32768, 0])
    quieter = np.frombuffer(apply_gain(pcm, -20 * math.log10(2)), "<i2")
    np.testing.assert_array_equal(quieter, [500, -500, 10000, -10000, 0])
    assert apply_gain(pcm, 0.0) == pcm.tobytes()


def test_frame_bytes_for() -> None:
    assert frame_bytes_for(16000, 20) == 640
    assert frame_bytes_for(24000, 10, channels=2) == 960
    assert frame_bytes_for(22050, 10) == 440  # 220.5 frames -> 220


# --------------------------------------------------------------------------------------------
# WAV
# --------------------------------------------------------------------------------------------


def test_pcm16_wav_round_trip_with_wave_module() -> None:
    pcm = _noise_pcm(1234).tobytes()
    data = build_wav(pcm, 24000)
    assert len(data) == 44 + len(pcm)
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 24000)
        assert w.getnframes() == 1234
        assert w.readframes(2000) == pcm
    assert parse_wav(data) == WavData(24000, 1, 2, 1, pcm)
    rate, channels, width, tag, body = parse_wav(data)  # plain tuple unpacking works
    assert (rate, channels, width, tag, body) == (24000, 1, 2, 1, pcm)

    # What the wave module writes, we parse (stereo here).
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm[:400])
    assert parse_wav(buf.getvalue()) == WavData(16000, 2, 2, 1, pcm[:400])
    assert wav_header(16000, 2, 2, 400) == buf.getvalue()[:44]  # byte-identical header


def test_pcm16_header_fields() -> None:
    header = wav_header(16000, 1, SampleFormat.PCM16, 3200)
    assert header == wav_header(16000, 1, 2, 3200)
    fields = struct.unpack("<4sI4s4sIHHIIHH4sI", header)
    assert fields == (
        b"RIFF",
        36 + 3200,
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        16000,
        32000,
        2,
        16,
        b"data",
        3200,
    )


def test_float32_header_fields_and_parse() -> None:
    samples = np.linspace(-1, 1, 480, dtype=np.float32)
    body = samples.astype("<f4").tobytes()
    data = build_wav(body, 48000, 1, SampleFormat.FLOAT32)
    header = data[:58]
    (riff, riff_size, wave_id, fmt_id, fmt_size, tag, ch, rate, byte_rate, align, bits, cb) = (
        struct.unpack_from("<4sI4s4sIHHIIHHH", header, 0)
    )
    assert (riff, wave_id, fmt_id) == (b"RIFF", b"WAVE", b"fmt ")
    assert riff_size == len(data) - 8 == 50 + len(body)
    assert (fmt_size, tag, ch, rate, byte_rate, align, bits, cb) == (
        18,
        3,
        1,
        48000,
        192000,
        4,
        32,
        0,
    )
    assert struct.unpack_from("<4sII", header, 38) == (b"fact", 4, 480)  # frame count
    assert struct.unpack_from("<4sI", header, 50) == (b"data", len(body))
    parsed = parse_wav(data)
    assert parsed[:4] == (48000, 1, 4, 3)
    np.testing.assert_array_equal(np.frombuffer(parsed.pcm, "<f4"), samples)
    # The stdlib wave module cannot read IEEE float (hence the field-by-field check above).
    with pytest.raises(wave.Error, match="unknown format: 3"), wave.open(io.BytesIO(data)):
        pass


def test_streaming_headers() -> None:
    pcm = _noise_pcm(500).tobytes()
    header = wav_header(16000)
    assert len(header) == 44
    assert struct.unpack_from("<I", header, 4)[0] == STREAMING_SIZE
    assert struct.unpack_from("<I", header, 40)[0] == STREAMING_SIZE
    assert parse_wav(header + pcm + b"\x01") == WavData(16000, 1, 2, 1, pcm)  # partial frame cut
    with wave.open(io.BytesIO(header + pcm)) as w:  # the stdlib reader copes too
        assert w.readframes(10_000) == pcm

    fheader = wav_header(24000, 1, SampleFormat.FLOAT32)
    assert len(fheader) == 58
    assert struct.unpack_from("<I", fheader, 4)[0] == STREAMING_SIZE
    assert struct.unpack_from("<4sII", fheader, 38) == (b"fact", 4, 0)  # 0 = unknown length
    assert struct.unpack_from("<4sI", fheader, 50) == (b"data", STREAMING_SIZE)
    f32 = to_float32_bytes(pcm)
    assert parse_wav(fheader + f32) == WavData(24000, 1, 4, 3, f32)

    # Some writers stream with 0 sizes instead.
    zeroed = bytearray(header)
    zeroed[4:8] = zeroed[40:44] = bytes(4)
    assert parse_wav(bytes(zeroed) + pcm).pcm == pcm


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
@pytest.mark.parametrize("streaming", [False, True])
def test_ffmpeg_reads_float32_wav(streaming: bool) -> None:
    samples = np.sin(np.arange(4800) / 10).astype("<f4")
    body = samples.tobytes()
    data = (
        wav_header(48000, 1, SampleFormat.FLOAT32) + body
        if streaming
        else build_wav(body, 48000, 1, SampleFormat.FLOAT32)
    )
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "wav", "-i", "pipe:0", "-f", "f32le", "pipe:1"],
        input=data,
        capture_output=True,
        check=True,
        timeout=30,
    )
    np.testing.assert_array_equal(np.frombuffer(result.stdout, "<f4"), samples)


def _chunk(chunk_id: bytes, body: bytes) -> bytes:
    return chunk_id + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)


def _riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


FMT_PCM16_MONO = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)


def test_parse_skips_extra_chunks() -> None:
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
    # 8-bit mono with an odd data size: pad byte written, RIFF size counts it.
    odd = build_wav(b"\x80\x81\x82", 8000, 1, 1)
    assert len(odd) == 44 + 4
    assert struct.unpack_from("<I", odd, 4)[0] == len(odd) - 8
    assert parse_wav(odd) == WavData(8000, 1, 1, 1, b"\x80\x81\x82")


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


def test_wav_header_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="sample rate"):
        wav_header(0)
    with pytest.raises(ValueError, match="channel"):
        wav_header(16000, 0)
    with pytest.raises(ValueError, match="sample format"):
        wav_header(16000, 1, 5)
    with pytest.raises(ValueError, match="whole number"):
        wav_header(16000, 2, 2, 6)
    with pytest.raises(ValueError, match="4 GiB"):
        wav_header(16000, 1, 2, 0xFFFFFFF0)


# --------------------------------------------------------------------------------------------
# Chunking
# --------------------------------------------------------------------------------------------


def test_chunk_pcm() -> None:
    data = bytes(range(10))
    assert list(chunk_pcm(data, 4)) == [data[:4], data[4:8], data[8:]]
    assert list(chunk_pcm(data, 4, pad=True))[-1] == data[8:] + b"\0\0"
    assert list(chunk_pcm(data, 5)) == [data[:5], data[5:]]
    assert list(chunk_pcm(b"", 4)) == []
    assert list(chunk_pcm(bytearray(data), 100)) == [data]
    with pytest.raises(ValueError, match="positive"):
        list(chunk_pcm(data, 0))


def test_pcm_chunker_random_pushes() -> None:
    rng = np.random.default_rng(5)
    data = rng.integers(0, 256, 10_007, dtype=np.uint8).tobytes()
    chunker = PcmChunker(640)
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        n = int(rng.integers(0, 1500))
        out += chunker.push(data[pos : pos + n])  # arbitrary, often odd, sizes
        pos += n
        assert chunker.buffered < 640
    assert all(len(c) == 640 for c in out)
    tail = chunker.flush()
    assert len(tail) % 2 == 0
    joined = b"".join(out) + tail
    assert joined == data[: len(data) // 2 * 2]  # the dangling odd byte is dropped
    assert chunker.buffered == 0
    assert chunker.flush() == b""


def test_pcm_chunker_flush_pad_and_frames() -> None:
    chunker = PcmChunker(12, frame_bytes=4)  # e.g. stereo PCM16
    assert chunker.push(b"\1" * 7) == []
    assert chunker.push(b"\2" * 6) == [b"\1" * 7 + b"\2" * 5]
    assert chunker.buffered == 1
    assert chunker.flush(pad=True) == b""  # a partial frame is not audio
    chunker.push(b"\3" * 5)
    assert chunker.flush(pad=True) == b"\3" * 4 + b"\0" * 8
    chunker.push(b"\4" * 4)
    chunker.clear()
    assert chunker.flush() == b""
    with pytest.raises(ValueError, match="multiple of frame_bytes"):
        PcmChunker(10, frame_bytes=4)
    with pytest.raises(ValueError, match="frame_bytes must be positive"):
        PcmChunker(10, frame_bytes=0)
