"""Numpy PCM helpers for the real-time voice pipeline (no Home Assistant imports, no I/O).

Contents:

* :class:`Resampler` -- a streaming polyphase resampler for mono PCM16 / float32 audio between any
  two integer rates (designed for 8000/16000/22050/24000/44100/48000 Hz), plus the one-shot
  :func:`resample` / :func:`resample_float`.
* PCM16 helpers: int16 <-> float32 conversion (with clipping), :func:`to_float32_bytes`,
  :func:`downmix_to_mono`, :func:`rms_level` / :func:`rms_dbfs`, :func:`apply_gain`.
* WAV: :func:`wav_header` (PCM and IEEE float, fixed-size or streaming), :func:`build_wav`,
  :func:`parse_wav`.
* Chunking: :func:`chunk_pcm` and the accumulating :class:`PcmChunker`.

Resampler design
----------------
The ratio ``in_rate/out_rate`` is reduced to ``down/up`` (e.g. 24000 -> 22050 is up=147,
down=160). Conceptually the input is zero-stuffed by ``up``, low-pass filtered at the
"prototype" rate ``in_rate * up`` and decimated by ``down``; the filter is applied in polyphase
form so only the taps that meet real input samples are computed.

* Low-pass prototype: windowed sinc, Kaiser window, ``beta = 0.1102 * (A - 8.7)`` with a design
  attenuation ``A = 65 dB`` (beta ~ 6.20).
* Band edges, relative to ``f_min = min(in_rate, out_rate)``: passband edge
  ``0.45 * f_min`` (= 0.9 x the lower Nyquist frequency; 7.2 kHz for a 16 kHz side, 3.6 kHz
  for 8 kHz), stopband edge ``0.5 * f_min`` (exactly the lower Nyquist frequency), so any
  content that would alias on decimation, and every image created by interpolation, is
  attenuated by >= 60 dB (measured: >= 64.7 dB). Passband ripple is < 0.005 dB. The cutoff sits in
  the middle of the transition band (``0.475 * f_min``).
* Length: Kaiser's estimate ``N = (A - 7.95) / (14.36 * transition / prototype_rate)`` gives
  ~80 taps per output sample when upsampling and ~80 x ``in_rate / out_rate`` when
  downsampling (e.g. 16k->48k: 81 taps, 24k->16k: 121, 48k->8k: 480).
* Group delay: the filter is linear phase; it is padded (as scipy's ``resample_poly`` does) so
  that its delay is a whole number ``D`` of output samples, and the first ``D`` outputs are
  dropped. Output sample ``n`` therefore corresponds to input time ``n / out_rate`` exactly as
  with ``scipy.signal.resample_poly`` -- no time shift, and all ``process()`` outputs plus
  ``flush()`` come to exactly ``ceil(n_in * up / down)`` samples. The price is latency: while
  streaming, the output lags the input by ``D`` output samples
  (:attr:`Resampler.latency_seconds`: 2.5 ms for 24k->16k and 16k->48k, 5 ms for 48k->8k);
  :meth:`Resampler.flush` returns that tail.
* Streaming: the filter history is kept between chunks, so chunked processing gives the same
  samples as one-shot processing (up to float32 rounding, i.e. +-1 LSB in PCM16).
* Speed: the polyphase bank is regrouped into "super-blocks" of ``G * up`` outputs that consume
  ``G * down`` inputs (``G * down`` >= taps per phase - 1), so each output only needs its own
  and the previous row of the input buffer reshaped to rows of ``G * down`` samples, and a whole
  chunk is one small float32 matrix product (rows x [previous row tail | row] @ weights) -- no
  per-sample Python loop and no per-chunk filter design (the bank is cached per rate pair with
  ``functools.lru_cache``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import enum
from functools import lru_cache
import math
import struct
from typing import Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

type BytesLike = bytes | bytearray | memoryview
"""Raw little-endian sample bytes."""

type FloatArray = NDArray[np.float32]

PCM16_WIDTH: Final = 2
"""Bytes per PCM16 sample."""

WAVE_FORMAT_PCM: Final = 0x0001
WAVE_FORMAT_IEEE_FLOAT: Final = 0x0003
WAVE_FORMAT_EXTENSIBLE: Final = 0xFFFE

STREAMING_SIZE: Final = 0xFFFFFFFF
"""RIFF/data size written by :func:`wav_header` when the length is unknown (as ffmpeg does)."""

DBFS_FLOOR: Final = -100.0
"""Level reported by :func:`rms_dbfs` for silence (and the lowest value it ever returns)."""

_INT16_SCALE: Final = 32768.0
_INV_INT16_SCALE: Final = 1.0 / 32768.0

# Resampler filter design (see the module docstring).
PASSBAND_EDGE: Final = 0.45
"""Passband edge as a fraction of min(in_rate, out_rate) (0.9 x the lower Nyquist frequency)."""
STOPBAND_EDGE: Final = 0.5
"""Stopband edge as a fraction of min(in_rate, out_rate) (the lower Nyquist frequency)."""
DESIGN_ATTENUATION_DB: Final = 65.0
"""Kaiser design stopband attenuation (the guaranteed figure is 60 dB)."""
KAISER_BETA: Final = 0.1102 * (DESIGN_ATTENUATION_DB - 8.7)
"""Kaiser window beta for :data:`DESIGN_ATTENUATION_DB` (~6.20)."""
_MAX_RATIO_TERM: Final = 4096


# --------------------------------------------------------------------------------------------
# PCM16 helpers
# --------------------------------------------------------------------------------------------


def _as_int16(pcm: BytesLike | NDArray[np.int16]) -> NDArray[np.int16]:
    """View PCM16 bytes (or pass an int16 array through) as a 1-D int16 array."""
    if isinstance(pcm, np.ndarray):
        if pcm.dtype != np.int16:
            raise TypeError(f"expected an int16 array, got {pcm.dtype}")
        return pcm.reshape(-1)
    if len(pcm) % PCM16_WIDTH:
        raise ValueError(f"PCM16 data has an odd number of bytes ({len(pcm)})")
    return np.frombuffer(pcm, dtype="<i2")


def pcm16_to_float32(pcm: BytesLike | NDArray[np.int16]) -> FloatArray:
    """Convert PCM16 (little-endian bytes or an int16 array) to float32 in [-1, 1).

    The scale is 1/32768, so -32768 maps to exactly -1.0 and the round trip through
    :func:`float32_to_pcm16` is lossless.
    """
    samples = _as_int16(pcm)
    return np.multiply(samples, np.float32(_INV_INT16_SCALE), dtype=np.float32)


def float32_to_int16(samples: NDArray[np.floating]) -> NDArray[np.int16]:
    """Convert float samples (nominal range [-1, 1]) to int16, rounding and clipping."""
    scaled = np.multiply(samples, _INT16_SCALE, dtype=np.float32)
    return _round_clip_int16(scaled)


def float32_to_pcm16(samples: NDArray[np.floating]) -> bytes:
    """Convert float samples (nominal range [-1, 1]) to PCM16 bytes, clipping out-of-range values.

    Values are scaled by 32768, rounded to nearest and clipped to [-32768, 32767], so
    out-of-range input saturates instead of wrapping around.
    """
    return float32_to_int16(samples).astype("<i2", copy=False).tobytes()


def _round_clip_int16(scaled: FloatArray) -> NDArray[np.int16]:
    """Round (in place) and clip float32 samples already in int16 units, then cast."""
    np.rint(scaled, out=scaled)
    np.minimum(scaled, 32767.0, out=scaled)  # ufuncs: cheaper per call than np.clip
    np.maximum(scaled, -32768.0, out=scaled)
    return scaled.astype(np.int16)


def to_float32_bytes(pcm: BytesLike | NDArray[np.int16]) -> bytes:
    """Convert PCM16 to little-endian IEEE float32 bytes (the payload of a float32 WAV stream)."""
    return pcm16_to_float32(pcm).astype("<f4", copy=False).tobytes()


def float32_bytes_to_pcm16(data: BytesLike) -> bytes:
    """Convert little-endian float32 bytes to PCM16 bytes (with clipping)."""
    if len(data) % 4:
        raise ValueError(f"float32 data length {len(data)} is not a multiple of 4")
    return float32_to_pcm16(np.frombuffer(data, dtype="<f4"))


def downmix_to_mono(pcm: BytesLike | NDArray[np.int16], channels: int = 2) -> bytes:
    """Average interleaved PCM16 channels into mono PCM16 (rounded; cannot overflow).

    A trailing incomplete frame is an error (``ValueError``).
    """
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    samples = _as_int16(pcm)
    if channels == 1:
        return samples.astype("<i2", copy=False).tobytes()
    if samples.size % channels:
        raise ValueError(f"{samples.size} samples is not a whole number of {channels}-ch frames")
    frames = samples.reshape(-1, channels)
    mixed = frames.sum(axis=1, dtype=np.float32)
    mixed *= np.float32(1.0 / channels)
    return _round_clip_int16(mixed).astype("<i2", copy=False).tobytes()


def rms_level(pcm: BytesLike | NDArray[np.int16]) -> float:
    """Return the RMS level of PCM16 audio relative to full scale (0.0 .. 1.0; 0.0 if empty).

    Full scale is an RMS of 1.0, i.e. a full-scale square wave; a full-scale sine is ~0.707.
    """
    samples = _as_int16(pcm)
    if samples.size == 0:
        return 0.0
    as_float = samples.astype(np.float64)
    return math.sqrt(float(np.dot(as_float, as_float)) / samples.size) * _INV_INT16_SCALE


def rms_dbfs(pcm: BytesLike | NDArray[np.int16], floor_db: float = DBFS_FLOOR) -> float:
    """Return the RMS level of PCM16 audio in dBFS, never below ``floor_db``.

    0 dBFS is the RMS of a full-scale square wave (a full-scale sine reads -3.01 dBFS).
    Silence and empty input return ``floor_db`` rather than ``-inf``.
    """
    level = rms_level(pcm)
    if level <= 0.0:
        return floor_db
    return max(floor_db, 20.0 * math.log10(level))


def apply_gain(pcm: BytesLike | NDArray[np.int16], gain_db: float) -> bytes:
    """Scale PCM16 audio by ``gain_db`` decibels, rounding and clipping (saturating) the result."""
    samples = _as_int16(pcm)
    if gain_db == 0.0:
        return samples.astype("<i2", copy=False).tobytes()
    factor = np.float32(10.0 ** (gain_db / 20.0))
    scaled = np.multiply(samples, factor, dtype=np.float32)
    return _round_clip_int16(scaled).astype("<i2", copy=False).tobytes()


def frame_bytes_for(rate: int, duration_ms: float, channels: int = 1, sample_width: int = 2) -> int:
    """Return the byte size of ``duration_ms`` of audio (rounded down to whole frames)."""
    frames = int(rate * duration_ms / 1000.0)
    return frames * channels * sample_width


# --------------------------------------------------------------------------------------------
# Resampler
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResamplerDesign:
    """A precomputed polyphase filter bank for one (in_rate, out_rate) pair (cached, read-only).

    ``weights`` is the super-block matrix: for an input buffer reshaped to rows of ``block_in``
    samples, the ``block_out`` outputs of row ``b`` are
    ``concatenate(rows[b - 1, head_start:], rows[b]) @ weights`` (the first ``head_start``
    samples of the previous row never meet a non-zero tap).
    """

    in_rate: int
    out_rate: int
    up: int
    down: int
    taps: int
    """Prototype filter length (at the rate in_rate * up, after delay-alignment padding)."""
    taps_per_phase: int
    """Input samples that contribute to one output sample."""
    delay: int
    """Group delay of the causal filter in output samples (dropped from the output)."""
    block_in: int
    block_out: int
    head_start: int
    weights: FloatArray
    prototype: NDArray[np.float64]
    """The prototype low-pass (gain ``up``), for inspection and tests."""


def _reduce(in_rate: int, out_rate: int) -> tuple[int, int]:
    """Return (up, down) for the rate pair, reduced to lowest terms."""
    if in_rate <= 0 or out_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {in_rate} -> {out_rate}")
    g = math.gcd(in_rate, out_rate)
    return out_rate // g, in_rate // g


@lru_cache(maxsize=64)
def design_resampler(in_rate: int, out_rate: int) -> ResamplerDesign:
    """Design (once per rate pair; cached) the polyphase filter bank for in_rate -> out_rate."""
    up, down = _reduce(in_rate, out_rate)
    if max(up, down) > _MAX_RATIO_TERM:
        raise ValueError(
            f"{in_rate} -> {out_rate} reduces to {up}/{down}, too large for a polyphase filter"
        )
    proto_rate = float(in_rate) * up
    f_min = float(min(in_rate, out_rate))
    transition = (STOPBAND_EDGE - PASSBAND_EDGE) * f_min / proto_rate  # cycles/sample
    cutoff = 0.5 * (STOPBAND_EDGE + PASSBAND_EDGE) * f_min / proto_rate  # cycles/sample
    n_est = (DESIGN_ATTENUATION_DB - 7.95) / (14.36 * transition)
    half = math.ceil(n_est / 2.0)
    n_taps = 2 * half + 1
    centre = np.arange(n_taps, dtype=np.float64) - half
    proto = 2.0 * cutoff * np.sinc(2.0 * cutoff * centre) * np.kaiser(n_taps, KAISER_BETA)
    proto *= up / proto.sum()  # unity DC gain after zero-stuffing by `up`
    # Pad in front so the centre tap lands on a multiple of `down` (whole-sample output delay),
    # then at the end to a whole number of polyphase taps.
    pre = (-half) % down
    delay = (half + pre) // down
    taps_per_phase = -(-(pre + n_taps) // up)
    full = np.zeros(taps_per_phase * up, dtype=np.float64)
    full[pre : pre + n_taps] = proto
    bank = full.reshape(taps_per_phase, up).T  # bank[p, k] = full[p + k * up]

    # Super-block: G * down inputs -> G * up outputs, with G * down >= taps_per_phase - 1 so each
    # output only needs the current and the previous row of the reshaped input buffer.
    group = max(1, -(-(taps_per_phase - 1) // down))
    block_in = group * down
    block_out = group * up
    j = np.arange(block_out)
    phase = (j * down) % up
    offset = (j * down) // up  # index of the newest input for output j, relative to the row
    matrix = np.zeros((2 * block_in, block_out), dtype=np.float64)
    for k in range(taps_per_phase):  # design-time only (<= a few hundred iterations)
        matrix[block_in + offset - k, j] = bank[phase, k]
    head_start = block_in - (taps_per_phase - 1)  # rows above this are all zero
    weights = np.ascontiguousarray(matrix[head_start:], dtype=np.float32)
    for arr in (weights, full):
        arr.setflags(write=False)
    return ResamplerDesign(
        in_rate=in_rate,
        out_rate=out_rate,
        up=up,
        down=down,
        taps=full.size,
        taps_per_phase=taps_per_phase,
        delay=delay,
        block_in=block_in,
        block_out=block_out,
        head_start=head_start,
        weights=weights,
        prototype=full,
    )


class Resampler:
    """Streaming, stateful sample-rate converter for mono audio.

    ``process()`` accepts PCM16 (little-endian bytes or an int16 array) and returns PCM16 bytes;
    ``process_float()`` is the float32 variant (no clipping). Both share one filter state, in
    PCM16 units, so they may be mixed. Feed chunks of any size; the concatenation of all
    outputs plus :meth:`flush` equals :func:`resample` of the concatenated input (to +-1 LSB),
    is time-aligned with the input (no group-delay shift) and has ``ceil(n_in * up / down)``
    samples. Identical rates are a passthrough.
    """

    __slots__ = (
        "_block_in",
        "_block_out",
        "_buf",
        "_design",
        "_drop",
        "_emitted",
        "_n_in",
        "_pending",
        "_skip",
        "in_rate",
        "out_rate",
    )

    def __init__(self, in_rate: int, out_rate: int) -> None:
        """Create a resampler from ``in_rate`` to ``out_rate`` Hz (the filter bank is cached)."""
        _reduce(in_rate, out_rate)
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._design: ResamplerDesign | None = (
            None if in_rate == out_rate else design_resampler(in_rate, out_rate)
        )
        self._block_in = self._design.block_in if self._design else 0
        self._block_out = self._design.block_out if self._design else 0
        self._buf: FloatArray = np.zeros(0, dtype=np.float32)
        self._pending = 0
        self._skip = 0
        self._drop = 0
        self._n_in = 0
        self._emitted = 0
        self.reset()

    @property
    def passthrough(self) -> bool:
        """True when in_rate == out_rate (samples are returned unchanged)."""
        return self._design is None

    @property
    def design(self) -> ResamplerDesign | None:
        """The filter design in use (None for a passthrough)."""
        return self._design

    @property
    def latency_samples(self) -> int:
        """Output samples held back while streaming (the filter's group delay); 0 if passthrough."""
        return self._design.delay if self._design else 0

    @property
    def latency_seconds(self) -> float:
        """Streaming latency in seconds (see :attr:`latency_samples`)."""
        return self.latency_samples / self.out_rate

    def reset(self) -> None:
        """Forget all history, as if newly created."""
        self._buf = np.zeros(self._block_in, dtype=np.float32)  # the (silent) row before time 0
        self._pending = 0  # samples of the current super-block already in _buf
        self._skip = 0  # outputs of the current super-block already emitted
        self._drop = self.latency_samples  # leading causal outputs still to discard
        self._n_in = 0
        self._emitted = 0

    def _run(self, samples: NDArray[np.int16] | NDArray[np.floating], count: bool) -> FloatArray:
        """Filter new input (any real dtype, PCM16 units); return new output in PCM16 units."""
        design = self._design
        assert design is not None
        block_in = self._block_in
        block_out = self._block_out
        avail = self._pending + samples.size
        if count:
            self._n_in += samples.size
        n_valid = -(-avail * block_out // block_in)  # outputs whose newest input has arrived
        n_blocks = -(-n_valid // block_out)
        buf = np.empty((n_blocks + 1) * block_in, dtype=np.float32)
        kept = block_in + self._pending
        buf[:kept] = self._buf
        buf[kept : block_in + avail] = samples
        buf[block_in + avail :] = 0.0
        rows = buf.reshape(n_blocks + 1, block_in)
        windows = np.concatenate((rows[:-1, design.head_start :], rows[1:]), axis=1)
        out: FloatArray = np.matmul(windows, design.weights)
        done_blocks, self._skip, start = n_valid // block_out, n_valid % block_out, self._skip
        self._buf = buf[done_blocks * block_in : block_in + avail].copy()
        self._pending = avail - done_blocks * block_in
        start += self._drop
        result = out.reshape(-1)[start:n_valid]
        self._drop = max(0, start - n_valid)
        self._emitted += result.size
        return result

    def process(self, pcm: BytesLike | NDArray[np.int16]) -> bytes:
        """Resample a chunk of mono PCM16 (bytes or int16 array); return PCM16 bytes."""
        samples = _as_int16(pcm)
        if self._design is None:
            return samples.astype("<i2", copy=False).tobytes()
        if samples.size == 0:
            return b""
        return _round_clip_int16(self._run(samples, True)).astype("<i2", copy=False).tobytes()

    def process_array(self, pcm: BytesLike | NDArray[np.int16]) -> NDArray[np.int16]:
        """Like :meth:`process` but return an int16 array."""
        samples = _as_int16(pcm)
        if self._design is None:
            return samples.copy()
        if samples.size == 0:
            return np.zeros(0, dtype=np.int16)
        return _round_clip_int16(self._run(samples, True))

    def process_float(self, samples: NDArray[np.floating]) -> FloatArray:
        """Resample a chunk of mono float audio (nominal range [-1, 1]); return float32.

        No clipping is applied, so the (tiny) overshoot of the filter is preserved.
        """
        flat = np.asarray(samples).reshape(-1)
        if self._design is None:
            return flat.astype(np.float32)
        if flat.size == 0:
            return np.zeros(0, dtype=np.float32)
        out = self._run(np.multiply(flat, _INT16_SCALE, dtype=np.float32), True)
        out *= np.float32(_INV_INT16_SCALE)
        return out

    def _flush(self) -> FloatArray:
        """Emit the delayed tail (PCM16 units) and reset."""
        design = self._design
        if design is None or self._n_in == 0:
            self.reset()
            return np.zeros(0, dtype=np.float32)
        total = -(-self._n_in * design.up // design.down)
        needed = total - self._emitted
        last_causal = design.delay + total - 1
        zeros = max(0, (last_causal * design.down) // design.up + 1 - self._n_in)
        tail = self._run(np.zeros(zeros, dtype=np.float32), False)[:needed] if needed > 0 else None
        self.reset()
        return tail if tail is not None else np.zeros(0, dtype=np.float32)

    def flush(self) -> bytes:
        """Return the remaining PCM16 output (the last ~latency samples) and reset the state."""
        return _round_clip_int16(self._flush()).astype("<i2", copy=False).tobytes()

    def flush_float(self) -> FloatArray:
        """Float32 variant of :meth:`flush`."""
        out = self._flush()
        out *= np.float32(_INV_INT16_SCALE)
        return out


def resample(pcm: BytesLike | NDArray[np.int16], in_rate: int, out_rate: int) -> bytes:
    """Resample a whole mono PCM16 buffer in one go (``ceil(n * out/in)`` samples, time-aligned)."""
    resampler = Resampler(in_rate, out_rate)
    return resampler.process(pcm) + resampler.flush()


def resample_float(samples: NDArray[np.floating], in_rate: int, out_rate: int) -> FloatArray:
    """Resample a whole mono float buffer in one go (float32 out, no clipping)."""
    resampler = Resampler(in_rate, out_rate)
    head = resampler.process_float(samples)
    return np.concatenate((head, resampler.flush_float()))


# --------------------------------------------------------------------------------------------
# WAV
# --------------------------------------------------------------------------------------------


class SampleFormat(enum.Enum):
    """Sample encodings supported by :func:`wav_header`."""

    PCM16 = "s16le"
    FLOAT32 = "f32le"
    FLOAT64 = "f64le"


class WavData(NamedTuple):
    """Result of :func:`parse_wav` (unpacks as ``rate, channels, sample_width, fmt_tag, pcm``)."""

    rate: int
    channels: int
    sample_width: int
    """Bytes per sample (per channel)."""
    format_tag: int
    """1 (PCM integer) or 3 (IEEE float); WAVE_FORMAT_EXTENSIBLE is resolved to its subformat."""
    pcm: bytes
    """The sample data (whole frames only)."""


def _format_params(sample_format: SampleFormat | int) -> tuple[int, int]:
    """Return (format_tag, sample_width) for a SampleFormat or an integer PCM sample width."""
    if isinstance(sample_format, SampleFormat):
        if sample_format is SampleFormat.FLOAT32:
            return WAVE_FORMAT_IEEE_FLOAT, 4
        if sample_format is SampleFormat.FLOAT64:
            return WAVE_FORMAT_IEEE_FLOAT, 8
        return WAVE_FORMAT_PCM, 2
    if sample_format in (1, 2, 3, 4):
        return WAVE_FORMAT_PCM, sample_format
    raise ValueError(f"unsupported sample format {sample_format!r} (int PCM widths are 1..4)")


def wav_header(
    rate: int,
    channels: int = 1,
    sample_format: SampleFormat | int = SampleFormat.PCM16,
    data_size: int | None = None,
) -> bytes:
    """Build a RIFF/WAVE header for interleaved little-endian samples.

    ``sample_format`` is a :class:`SampleFormat` or an integer sample width in bytes (1..4,
    integer PCM). Integer PCM uses the plain 16-byte ``fmt`` chunk with format tag 1 (44-byte
    header). IEEE float32 uses format tag 3 with the 18-byte ``fmt`` chunk (``cbSize = 0``)
    followed by the ``fact`` chunk (frame count) that the spec requires for non-PCM formats
    (58-byte header). We do not use WAVE_FORMAT_EXTENSIBLE: tag 3 + ``fact`` is what ffmpeg,
    sox and libsndfile write for mono/stereo float and all of them read it.

    ``data_size`` is the byte length of the sample data that follows (a multiple of the frame
    size). ``None`` produces a streaming header for data of unknown length: the RIFF and
    ``data`` sizes are 0xFFFFFFFF (what ffmpeg writes to a pipe; its demuxer then reads to
    EOF) and the ``fact`` frame count is 0 ("unknown"). For an odd ``data_size`` the RIFF size
    accounts for the pad byte the caller must append (:func:`build_wav` does).
    """
    if rate <= 0 or rate > 0xFFFFFFFF:
        raise ValueError(f"invalid sample rate {rate}")
    if not 1 <= channels <= 0xFFFF:
        raise ValueError(f"invalid channel count {channels}")
    tag, width = _format_params(sample_format)
    block_align = channels * width
    byte_rate = rate * block_align
    if byte_rate > 0xFFFFFFFF:
        raise ValueError("byte rate does not fit a WAV header")
    if tag == WAVE_FORMAT_PCM:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, byte_rate, block_align, 8 * width)
        extra = b""
    else:
        fmt = struct.pack("<HHIIHHH", tag, channels, rate, byte_rate, block_align, 8 * width, 0)
        frames = 0 if data_size is None else data_size // block_align
        extra = b"fact" + struct.pack("<II", 4, frames)
    header_body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra
    if data_size is None:
        riff_size = data_field = STREAMING_SIZE
    else:
        if data_size < 0 or data_size % block_align:
            raise ValueError(
                f"data_size {data_size} is not a whole number of {block_align}-byte frames"
            )
        riff_size = len(header_body) + 8 + data_size + (data_size & 1)
        if riff_size > 0xFFFFFFFF:
            raise ValueError("data too large for a RIFF/WAVE file (4 GiB limit)")
        data_field = data_size
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + header_body
        + b"data"
        + struct.pack("<I", data_field)
    )


def build_wav(
    data: BytesLike,
    rate: int,
    channels: int = 1,
    sample_format: SampleFormat | int = SampleFormat.PCM16,
) -> bytes:
    """Return a complete WAV file (header + data + pad byte if needed) for the given samples."""
    size = len(data)
    return wav_header(rate, channels, sample_format, size) + bytes(data) + (b"\0" * (size & 1))


def parse_wav(data: BytesLike) -> WavData:
    """Parse a RIFF/WAVE file held in memory; return its format and sample bytes.

    Supports integer PCM (tag 1), IEEE float (tag 3) and WAVE_FORMAT_EXTENSIBLE wrapping either
    (reported as its subformat tag). Unknown chunks (``LIST``, ``fact``, ``bext``, ...) are
    skipped, before or after ``data``. A ``data`` size of 0xFFFFFFFF, or 0 in a file whose RIFF
    size is 0/0xFFFFFFFF (streaming headers), means "to the end of the input"; the result is
    trimmed to whole frames. Raises ``ValueError`` with a specific message for anything
    malformed or unsupported (truncated chunks, missing ``fmt``/``data``, bad format fields).
    """
    view = memoryview(data).cast("B")
    total = len(view)
    if total < 12:
        raise ValueError(f"not a WAV file: only {total} bytes")
    magic, riff_size, wave = struct.unpack_from("<4sI4s", view, 0)
    if magic == b"RIFX":
        raise ValueError("big-endian RIFX WAV files are not supported")
    if magic == b"RF64":
        raise ValueError("RF64 WAV files are not supported")
    if magic != b"RIFF" or wave != b"WAVE":
        raise ValueError("not a WAV file: missing RIFF/WAVE signature")
    streaming = riff_size in (0, STREAMING_SIZE)
    fmt: tuple[int, int, int, int, int] | None = None  # tag, channels, rate, block_align, width
    pos = 12
    while pos + 8 <= total:
        chunk_id, size = struct.unpack_from("<4sI", view, pos)
        body = pos + 8
        if chunk_id == b"fmt ":
            if body + size > total:
                raise ValueError("truncated 'fmt ' chunk")
            fmt = _parse_fmt(view[body : body + size])
        elif chunk_id == b"data":
            if fmt is None:
                raise ValueError("'data' chunk before any 'fmt ' chunk")
            tag, channels, rate, block_align, width = fmt
            if size == STREAMING_SIZE or (size == 0 and streaming):
                end = body + (total - body) // block_align * block_align
            else:
                end = body + size
                if end > total:
                    raise ValueError(
                        f"truncated 'data' chunk: header says {size} bytes, {total - body} present"
                    )
                if size % block_align:
                    raise ValueError(
                        f"'data' size {size} is not a whole number of {block_align}-byte frames"
                    )
            return WavData(rate, channels, width, tag, bytes(view[body:end]))
        elif body + size > total:
            raise ValueError(f"truncated {chunk_id!r} chunk")
        pos = body + size + (size & 1)
    if fmt is None:
        raise ValueError("no 'fmt ' chunk")
    raise ValueError("no 'data' chunk")


_KSDATAFORMAT_SUFFIX: Final = bytes.fromhex("000000001000800000aa00389b71")


def _parse_fmt(body: memoryview) -> tuple[int, int, int, int, int]:
    """Validate a ``fmt `` chunk body; return (tag, channels, rate, block_align, sample_width)."""
    if len(body) < 16:
        raise ValueError(f"'fmt ' chunk too short ({len(body)} bytes)")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body, 0)
    if tag == WAVE_FORMAT_EXTENSIBLE:
        if len(body) < 40:
            raise ValueError("WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk too short")
        guid = bytes(body[24:40])
        if guid[2:] != _KSDATAFORMAT_SUFFIX:
            raise ValueError("WAVE_FORMAT_EXTENSIBLE with an unknown subformat GUID")
        tag = int.from_bytes(guid[:2], "little")
    if tag not in (WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT):
        raise ValueError(f"unsupported WAV format tag 0x{tag:04x} (only PCM and IEEE float)")
    if channels == 0:
        raise ValueError("WAV header declares 0 channels")
    if rate == 0:
        raise ValueError("WAV header declares a 0 Hz sample rate")
    if bits == 0 or bits % 8:
        raise ValueError(f"unsupported bits per sample: {bits}")
    width = bits // 8
    if tag == WAVE_FORMAT_IEEE_FLOAT and width not in (4, 8):
        raise ValueError(f"IEEE float WAV with {bits}-bit samples")
    if block_align != channels * width:
        raise ValueError(f"block align {block_align} != channels {channels} x {width} bytes")
    return tag, channels, rate, block_align, width


# --------------------------------------------------------------------------------------------
# Chunking
# --------------------------------------------------------------------------------------------


def chunk_pcm(data: BytesLike, chunk_bytes: int, *, pad: bool = False) -> Iterator[bytes]:
    """Yield consecutive ``chunk_bytes``-sized slices of ``data``.

    The last chunk may be shorter; with ``pad=True`` it is zero-padded (silence for PCM) to the
    full size. Nothing is yielded for empty input.
    """
    if chunk_bytes <= 0:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
    view = memoryview(data).cast("B")
    for start in range(0, len(view), chunk_bytes):
        chunk = bytes(view[start : start + chunk_bytes])
        if pad and len(chunk) < chunk_bytes:
            chunk += b"\0" * (chunk_bytes - len(chunk))
        yield chunk


class PcmChunker:
    """Accumulate arbitrary-size byte input and emit fixed-size chunks of whole frames.

    ``chunk_bytes`` must be a multiple of ``frame_bytes`` (sample width x channels; 2 for mono
    PCM16), so every emitted chunk is frame-aligned even if the input arrives split mid-sample.
    """

    __slots__ = ("_buf", "chunk_bytes", "frame_bytes")

    def __init__(self, chunk_bytes: int, frame_bytes: int = PCM16_WIDTH) -> None:
        """Create a chunker emitting ``chunk_bytes``-sized chunks of ``frame_bytes`` frames."""
        if frame_bytes <= 0:
            raise ValueError(f"frame_bytes must be positive, got {frame_bytes}")
        if chunk_bytes <= 0 or chunk_bytes % frame_bytes:
            raise ValueError(
                f"chunk_bytes must be a positive multiple of frame_bytes ({frame_bytes}), "
                f"got {chunk_bytes}"
            )
        self.chunk_bytes = chunk_bytes
        self.frame_bytes = frame_bytes
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes currently held (less than ``chunk_bytes`` between calls)."""
        return len(self._buf)

    def push(self, data: BytesLike) -> list[bytes]:
        """Add ``data``; return the complete chunks now available (possibly none)."""
        self._buf += data
        size = self.chunk_bytes
        n_full = len(self._buf) // size
        if n_full == 0:
            return []
        chunks = [bytes(self._buf[i * size : (i + 1) * size]) for i in range(n_full)]
        del self._buf[: n_full * size]
        return chunks

    def flush(self, *, pad: bool = False) -> bytes:
        """Return what is buffered (whole frames only; a dangling partial frame is dropped).

        With ``pad=True`` a non-empty remainder is zero-padded to a full chunk. Empties the buffer.
        """
        usable = len(self._buf) - len(self._buf) % self.frame_bytes
        rest = bytes(self._buf[:usable])
        self._buf.clear()
        if pad and rest:
            rest += b"\0" * (self.chunk_bytes - len(rest))
        return rest

    def clear(self) -> None:
        """Discard anything buffered."""
        self._buf.clear()
