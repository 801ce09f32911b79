"""Energy voice activity detection over incoming PCM16 audio.

Audio time, not wall time, drives the detector, so results depend only on the samples sent.
Thresholds (dBFS of 10 ms frames):

* start of speech: START_SENSITIVITY_HIGH (the default) -45 dBFS held for 30 ms,
  START_SENSITIVITY_LOW -30 dBFS held for 100 ms; ``prefixPaddingMs`` overrides the hold time.
* end of speech: frames under the silence threshold for ``silenceDurationMs``
  (EmulatorConfig.default_silence_ms when unset). END_SENSITIVITY_HIGH (the default) counts
  frames under -40 dBFS as silence, END_SENSITIVITY_LOW only frames under -55 dBFS.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Any, Literal

import numpy as np

FRAME_MS = 10


@dataclass(frozen=True)
class VadSettings:
    """Resolved detector settings."""

    start_dbfs: float
    start_ms: int
    silence_dbfs: float
    silence_ms: int

    @classmethod
    def from_setup(cls, aad: dict[str, Any], default_silence_ms: int) -> VadSettings:
        """Build settings from a normalized automaticActivityDetection dict."""
        start_low = aad.get("startOfSpeechSensitivity") == "START_SENSITIVITY_LOW"
        end_low = aad.get("endOfSpeechSensitivity") == "END_SENSITIVITY_LOW"
        prefix = aad.get("prefixPaddingMs")
        start_ms = int(prefix) if prefix is not None else (100 if start_low else 30)
        silence = aad.get("silenceDurationMs")
        return cls(
            start_dbfs=-30.0 if start_low else -45.0,
            start_ms=max(FRAME_MS, start_ms),
            silence_dbfs=-55.0 if end_low else -40.0,
            silence_ms=int(silence) if silence is not None else default_silence_ms,
        )


@dataclass(frozen=True)
class VadEvent:
    """A detected activity boundary; ``offset_ms`` is audio time since the stream began."""

    kind: Literal["start", "end"]
    offset_ms: int


def frame_dbfs(samples: np.ndarray[Any, np.dtype[np.int16]]) -> float:
    """Return the RMS level of int16 samples in dBFS (-120 for digital silence)."""
    if samples.size == 0:
        return -120.0
    rms = math.sqrt(float(np.mean(samples.astype(np.float64) ** 2)))
    if rms <= 0.0:
        return -120.0
    return 20.0 * math.log10(rms / 32768.0)


class EnergyVad:
    """Stateful detector fed with PCM16LE mono chunks of any size."""

    def __init__(self, settings: VadSettings, sample_rate: int) -> None:
        """Create a detector for audio at ``sample_rate``."""
        self.settings = settings
        self.sample_rate = sample_rate
        self._frame = max(1, sample_rate * FRAME_MS // 1000)
        self._pending = b""
        self._frames_seen = 0
        self._loud_run = 0
        self._silent_ms = 0
        self.in_speech = False
        self.speech_start_ms = 0

    @property
    def position_ms(self) -> int:
        """Audio time processed so far."""
        return self._frames_seen * FRAME_MS

    def feed(self, pcm: bytes) -> list[VadEvent]:
        """Process more audio; return the boundaries it contains."""
        data = self._pending + pcm
        frame_bytes = self._frame * 2
        usable = len(data) - len(data) % frame_bytes
        self._pending = data[usable:]
        events: list[VadEvent] = []
        if usable == 0:
            return events
        samples = np.frombuffer(data[:usable], dtype="<i2")
        for start in range(0, samples.size, self._frame):
            events.extend(self._step(frame_dbfs(samples[start : start + self._frame])))
        return events

    def _step(self, level: float) -> list[VadEvent]:
        self._frames_seen += 1
        s = self.settings
        if not self.in_speech:
            self._loud_run = self._loud_run + 1 if level >= s.start_dbfs else 0
            if self._loud_run * FRAME_MS >= s.start_ms:
                self.in_speech = True
                self._silent_ms = 0
                self.speech_start_ms = self.position_ms - self._loud_run * FRAME_MS
                self._loud_run = 0
                return [VadEvent("start", self.speech_start_ms)]
            return []
        if level < s.silence_dbfs:
            self._silent_ms += FRAME_MS
            if self._silent_ms >= s.silence_ms:
                self.in_speech = False
                self._silent_ms = 0
                return [VadEvent("end", self.position_ms)]
        else:
            self._silent_ms = 0
        return []

    def flush(self) -> list[VadEvent]:
        """End a pending utterance now (audioStreamEnd)."""
        self._pending = b""
        self._loud_run = 0
        if self.in_speech:
            self.in_speech = False
            self._silent_ms = 0
            return [VadEvent("end", self.position_ms)]
        return []
