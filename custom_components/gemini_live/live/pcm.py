"""The audio DSP production uses: a streaming resampler and WAV stream headers (numpy, no I/O).

Contents:

* :class:`Resampler` -- a streaming polyphase resampler for mono audio between any two integer
  rates (designed for 8000/16000/22050/24000/44100/48000 Hz): PCM16 in and out
  (:meth:`Resampler.process`) or float32 in and out (:meth:`Resampler.process_float`), with the
  filter bank from :func:`design_resampler`.
* :func:`pcm16_to_float32`.
* :func:`wav_header`: the header of an endless WAV stream (PCM16, IEEE float32 or float64).

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
* Threads: the product is done in slices of at most :data:`MATMUL_MAX_ELEMENTS` multiply-adds.
  OpenBLAS (numpy's BLAS) hands a larger product to its thread pool, and waking those threads
  on a busy host costs milliseconds (measured on 2 cores: 1.9 ms for one 200 ms chunk at
  24k->22.05k, spikes of 10-16 ms while the event loop's other work holds the second core)
  where a single thread needs 0.1 ms. One thread is what a real-time stream wants anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
import enum
from functools import lru_cache
import math
import struct
from typing import Final

import numpy as np
from numpy.typing import NDArray

type BytesLike = bytes | bytearray | memoryview
"""Raw little-endian sample bytes."""

type FloatArray = NDArray[np.float32]

WAVE_FORMAT_PCM: Final = 0x0001
WAVE_FORMAT_IEEE_FLOAT: Final = 0x0003

STREAMING_SIZE: Final = 0xFFFFFFFF
"""RIFF/data size written by :func:`wav_header` (unknown length, as ffmpeg writes to a pipe)."""

_INT16_SCALE: Final = 32768.0
_INV_INT16_SCALE: Final = 1.0 / 32768.0
_PCM16_MAX: Final = np.float32(32767.0)
_PCM16_MIN: Final = np.float32(-32768.0)

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
MATMUL_MAX_ELEMENTS: Final = 65536 * 4
"""Products up to ``m * n * k`` of this size stay on the calling thread in OpenBLAS
(``SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD``); see "Threads" above."""


# --------------------------------------------------------------------------------------------
# PCM16
# --------------------------------------------------------------------------------------------


def _as_int16(pcm: BytesLike | NDArray[np.int16]) -> NDArray[np.int16]:
    """View PCM16 bytes (or pass an int16 array through) as a 1-D int16 array."""
    if isinstance(pcm, np.ndarray):
        if pcm.dtype != np.int16:
            raise TypeError(f"expected an int16 array, got {pcm.dtype}")
        return pcm.reshape(-1)
    if len(pcm) % 2:
        raise ValueError(f"PCM16 data has an odd number of bytes ({len(pcm)})")
    return np.frombuffer(pcm, dtype="<i2")


def pcm16_to_float32(pcm: BytesLike | NDArray[np.int16]) -> FloatArray:
    """Convert PCM16 (little-endian bytes or an int16 array) to float32 in [-1, 1).

    The scale is 1/32768, so -32768 maps to exactly -1.0 and ``rint(x * 32768)`` gives the
    samples back exactly.
    """
    samples = _as_int16(pcm)
    return np.multiply(samples, np.float32(_INV_INT16_SCALE), dtype=np.float32)


def _pcm16_bytes(scaled: FloatArray) -> bytes:
    """Round (in place) and clip float32 samples already in int16 units; return PCM16 bytes.

    Out-of-range values saturate instead of wrapping around.
    """
    np.rint(scaled, out=scaled)
    np.minimum(scaled, _PCM16_MAX, out=scaled)  # ufuncs: cheaper per call than np.clip
    np.maximum(scaled, _PCM16_MIN, out=scaled)
    return scaled.astype("<i2").tobytes()


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

    up: int
    down: int
    delay: int
    """Group delay of the causal filter in output samples (dropped from the output)."""
    block_in: int
    block_out: int
    head_start: int
    weights: FloatArray
    prototype: NDArray[np.float64]
    """The prototype low-pass at the rate in_rate * up (gain ``up``, padded for alignment)."""

    @property
    def matmul_rows(self) -> int:
        """Rows per matrix product that stay single-threaded (see "Threads" above)."""
        return max(1, (MATMUL_MAX_ELEMENTS - 1) // self.weights.size)


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
        up=up,
        down=down,
        delay=delay,
        block_in=block_in,
        block_out=block_out,
        head_start=head_start,
        weights=weights,
        prototype=full,
    )


class Resampler:
    """Streaming, stateful sample-rate converter for mono audio.

    ``process()`` accepts PCM16 (little-endian bytes or an int16 array) and returns PCM16 bytes
    (rounded, saturating); ``process_float()`` is the float32 variant (no clipping). Both share
    one filter state, in PCM16 units, so they may be mixed. Feed chunks of any size; the
    concatenation of all outputs plus :meth:`flush` equals the one-shot result for the
    concatenated input (to +-1 LSB), is time-aligned with the input (no group-delay shift) and
    has ``ceil(n_in * up / down)`` samples. Identical rates are a passthrough.
    """

    __slots__ = (
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
        self._buf: FloatArray = np.zeros(0, dtype=np.float32)
        self._pending = 0
        self._skip = 0
        self._drop = 0
        self._n_in = 0
        self._emitted = 0
        self._reset()

    @property
    def latency_samples(self) -> int:
        """Output samples held back while streaming (the filter's group delay); 0 if passthrough."""
        return self._design.delay if self._design else 0

    @property
    def latency_seconds(self) -> float:
        """Streaming latency in seconds (see :attr:`latency_samples`)."""
        return self.latency_samples / self.out_rate

    def _reset(self) -> None:
        """Forget all history, as if newly created."""
        block_in = self._design.block_in if self._design else 0
        self._buf = np.zeros(block_in, dtype=np.float32)  # the (silent) row before time 0
        self._pending = 0  # samples of the current super-block already in _buf
        self._skip = 0  # outputs of the current super-block already emitted
        self._drop = self.latency_samples  # leading causal outputs still to discard
        self._n_in = 0
        self._emitted = 0

    def _run(self, samples: NDArray[np.int16] | NDArray[np.floating], count: bool) -> FloatArray:
        """Filter new input (any real dtype, PCM16 units); return new output in PCM16 units."""
        design = self._design
        assert design is not None
        block_in = design.block_in
        block_out = design.block_out
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
        tail = block_in - design.head_start
        windows = np.empty((n_blocks, tail + block_in), dtype=np.float32)
        windows[:, :tail] = rows[:-1, design.head_start :]
        windows[:, tail:] = rows[1:]
        out = np.empty((n_blocks, block_out), dtype=np.float32)
        step = design.matmul_rows
        for first in range(0, n_blocks, step):
            np.matmul(windows[first : first + step], design.weights, out=out[first : first + step])
        done_blocks, self._skip, start = n_valid // block_out, n_valid % block_out, self._skip
        self._buf = buf[done_blocks * block_in : block_in + avail]  # a view: buf is done with
        self._pending = avail - done_blocks * block_in
        start += self._drop
        result = out.reshape(-1)[start:n_valid]
        self._drop = max(0, start - n_valid)
        self._emitted += result.size
        return result

    def process(self, pcm: BytesLike | NDArray[np.int16]) -> bytes:
        """Resample a chunk of mono PCM16 (bytes or int16 array); return PCM16 bytes."""
        if self._design is None and not isinstance(pcm, np.ndarray):
            if len(pcm) % 2:  # the same check as _as_int16's, without numpy: a mic per chunk
                raise ValueError(f"PCM16 data has an odd number of bytes ({len(pcm)})")
            return bytes(pcm)
        samples = _as_int16(pcm)
        if self._design is None:
            return samples.astype("<i2", copy=False).tobytes()
        if samples.size == 0:
            return b""
        return _pcm16_bytes(self._run(samples, True))

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
            self._reset()
            return np.zeros(0, dtype=np.float32)
        total = -(-self._n_in * design.up // design.down)
        needed = total - self._emitted
        last_causal = design.delay + total - 1
        zeros = max(0, (last_causal * design.down) // design.up + 1 - self._n_in)
        tail = self._run(np.zeros(zeros, dtype=np.float32), False)[:needed] if needed > 0 else None
        self._reset()
        return tail if tail is not None else np.zeros(0, dtype=np.float32)

    def flush(self) -> bytes:
        """Return the remaining PCM16 output (the last ~latency samples) and reset the state."""
        return _pcm16_bytes(self._flush())

    def flush_float(self) -> FloatArray:
        """Float32 variant of :meth:`flush`."""
        out = self._flush()
        out *= np.float32(_INV_INT16_SCALE)
        return out


# --------------------------------------------------------------------------------------------
# WAV
# --------------------------------------------------------------------------------------------


class SampleFormat(enum.Enum):
    """Sample encodings supported by :func:`wav_header`."""

    PCM16 = "s16le"
    FLOAT32 = "f32le"
    FLOAT64 = "f64le"


_FORMAT_PARAMS: Final = {
    SampleFormat.PCM16: (WAVE_FORMAT_PCM, 2),
    SampleFormat.FLOAT32: (WAVE_FORMAT_IEEE_FLOAT, 4),
    SampleFormat.FLOAT64: (WAVE_FORMAT_IEEE_FLOAT, 8),
}
"""(format tag, bytes per sample) of each :class:`SampleFormat`."""


def wav_header(
    rate: int, channels: int = 1, sample_format: SampleFormat = SampleFormat.PCM16
) -> bytes:
    """Build the RIFF/WAVE header of an endless stream of interleaved little-endian samples.

    PCM16 uses the plain 16-byte ``fmt`` chunk with format tag 1 (44-byte header). IEEE float
    uses format tag 3 with the 18-byte ``fmt`` chunk (``cbSize = 0``) followed by the ``fact``
    chunk that the spec requires for non-PCM formats (58-byte header). We do not use
    WAVE_FORMAT_EXTENSIBLE: tag 3 + ``fact`` is what ffmpeg, sox and libsndfile write for
    mono/stereo float and all of them read it.

    The length is unknown: the RIFF and ``data`` sizes are 0xFFFFFFFF (what ffmpeg writes to a
    pipe; its demuxer then reads to EOF) and the ``fact`` frame count is 0 ("unknown").
    """
    if rate <= 0 or rate > 0xFFFFFFFF:
        raise ValueError(f"invalid sample rate {rate}")
    if not 1 <= channels <= 0xFFFF:
        raise ValueError(f"invalid channel count {channels}")
    tag, width = _FORMAT_PARAMS[sample_format]
    block_align = channels * width
    byte_rate = rate * block_align
    if byte_rate > 0xFFFFFFFF:
        raise ValueError("byte rate does not fit a WAV header")
    if tag == WAVE_FORMAT_PCM:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, byte_rate, block_align, 8 * width)
        fact = b""
    else:
        fmt = struct.pack("<HHIIHHH", tag, channels, rate, byte_rate, block_align, 8 * width, 0)
        fact = b"fact" + struct.pack("<II", 4, 0)
    return (
        b"RIFF"
        + struct.pack("<I", STREAMING_SIZE)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + fact
        + b"data"
        + struct.pack("<I", STREAMING_SIZE)
    )
