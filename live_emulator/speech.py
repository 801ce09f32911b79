"""Deterministic synthetic "speech": 24 kHz PCM16 voiced tones with a syllable envelope.

Not intelligible, but real, nonzero audio whose duration scales with the reply text, whose
rhythm follows its words and syllables, and which is identical for the same text, voice and seed.

Synthesis takes milliseconds of CPU per second of speech (a real server's TTS runs on its own
machines): results are cached, so a reply said again (a benchmark's scripted reply, one
prepared with :meth:`~live_emulator.LiveEmulator.prepare_speech`) costs no synthesis when it is
spoken, and N sessions answering at once do not queue behind each other's synthesis.
"""

from __future__ import annotations

from dataclasses import dataclass
import functools
import hashlib
import re

import numpy as np

OUTPUT_RATE = 24000
OUTPUT_MIME = f"audio/pcm;rate={OUTPUT_RATE}"


@dataclass(frozen=True)
class Speech:
    """Synthesized audio and where each word of the text starts (in samples)."""

    pcm: bytes
    words: tuple[str, ...]
    word_starts: tuple[int, ...]

    @property
    def duration_s(self) -> float:
        """Length of the audio in seconds."""
        return len(self.pcm) / 2 / OUTPUT_RATE


def _stable_int(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


SPEECH_CACHE_SIZE = 64  # replies (a 7 s reply is 336 kB)


@functools.lru_cache(maxsize=SPEECH_CACHE_SIZE)
def synthesize(text: str, *, voice: str, seed: int, ms_per_char: float) -> Speech:
    """Return deterministic PCM16LE mono 24 kHz audio "speaking" ``text``.

    Cached: the result is immutable and shared by every reply that says the same.
    """
    words = tuple(re.findall(r"\S+", text)) or ("...",)
    rng = np.random.default_rng(_stable_int(seed, voice, text))
    base_f0 = 95.0 + (_stable_int("voice", voice) % 120)
    chunks: list[np.ndarray] = []
    starts: list[int] = []
    position = 0
    for word in words:
        n = max(1, round((len(word) + 1) * ms_per_char * OUTPUT_RATE / 1000))
        starts.append(position)
        voiced = int(n * 0.82)
        syllables = max(1, len(re.findall(r"[aeiouyAEIOUY]+", word)))
        t = np.arange(voiced) / OUTPUT_RATE
        f0 = base_f0 * (1.0 + 0.08 * rng.standard_normal()) * (1.0 - 0.1 * t / max(t[-1], 1e-3))
        phase = 2 * np.pi * np.cumsum(f0) / OUTPUT_RATE
        wave = sum((0.6**h) * np.sin((h + 1) * phase + rng.uniform(0, np.pi)) for h in range(4))
        seg = np.arange(voiced) * syllables / max(voiced, 1)
        envelope = np.sin(np.pi * (seg % 1.0)) ** 0.6
        audio = np.zeros(n)
        audio[:voiced] = 0.28 * wave * envelope * (0.8 + 0.4 * rng.random())
        chunks.append(audio)
        position += n
    signal = np.concatenate(chunks)
    pcm = np.clip(signal * 32767, -32768, 32767).astype("<i2").tobytes()
    return Speech(pcm=pcm, words=words, word_starts=tuple(starts))
