"""Resampler benchmark: CPU time of streaming resampling, expressed as x real time.

Each case feeds 10 s of PCM16 noise through a fresh :class:`Resampler` in fixed-size chunks
(``process()`` per chunk, then ``flush()``), bytes in and bytes out exactly as the voice pipeline
does, and divides the audio duration by the CPU time (``time.process_time``; one thread -- the
matrices are far too small for BLAS to go multi-threaded). The best of a few repeats is reported
so that a noisy neighbour does not dominate; the filter bank is designed (and cached) before
timing starts.
"""

from __future__ import annotations

import time

import numpy as np

from custom_components.gemini_live.live.pcm import Resampler, design_resampler

CASES: tuple[tuple[int, int], ...] = (
    (16000, 24000),
    (24000, 16000),
    (24000, 48000),
    (24000, 22050),
    (48000, 16000),
)


def _seconds_per_run(in_rate: int, out_rate: int, chunk_ms: int, seconds: float) -> float:
    """CPU seconds to stream ``seconds`` of audio through a new resampler in chunks."""
    rng = np.random.default_rng(1234)
    pcm = (rng.standard_normal(int(in_rate * seconds)) * 4000.0).astype("<i2").tobytes()
    chunk_bytes = in_rate * chunk_ms // 1000 * 2
    chunks = [pcm[i : i + chunk_bytes] for i in range(0, len(pcm), chunk_bytes)]
    resampler = Resampler(in_rate, out_rate)
    start = time.process_time()
    for chunk in chunks:
        resampler.process(chunk)
    resampler.flush()
    return time.process_time() - start


def bench_resampler(
    chunk_ms: int = 20,
    seconds: float = 10.0,
    repeats: int = 3,
    cases: tuple[tuple[int, int], ...] = CASES,
) -> list[str]:
    """Measure streaming resampler speed for each rate pair; return printable lines."""
    lines: list[str] = []
    for in_rate, out_rate in cases:
        design_resampler(in_rate, out_rate)  # design outside the timed region (it is cached)
        best = min(_seconds_per_run(in_rate, out_rate, chunk_ms, seconds) for _ in range(repeats))
        speed = seconds / best if best > 0 else float("inf")
        lines.append(f"resample {in_rate}->{out_rate} chunk={chunk_ms}ms: {speed:.0f}x realtime")
    return lines


if __name__ == "__main__":
    for chunk in (20, 10, 100):
        for line in bench_resampler(chunk_ms=chunk):
            print(line, flush=True)
