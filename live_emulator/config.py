"""Configuration of the Live API emulator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .scenario import Scenario

# What the real server sends when a connection reaches its lifetime (seen in user reports: a
# goAway with timeLeft "50s", then this close frame).
LIFETIME_CLOSE_CODE = 1011
LIFETIME_CLOSE_REASON = "Deadline expired before operation could complete."


@dataclass
class EmulatorConfig:
    """Everything that shapes the emulator's behaviour; times are configurable for fast tests.

    Attributes:
        api_keys: accepted API keys; None accepts any non-empty key.
        pace: 1.0 streams reply audio at real time, 0 sends it as fast as possible.
        audio_chunk_ms: duration of each outgoing 24 kHz audio chunk: a number of ms, or a
            ``(low, high)`` range the chunk lengths are drawn from (10 ms steps, seeded). The
            real server's chunks are 200-240 ms.
        connection_lifetime_s: a connection is closed this long after setupComplete.
        go_away_before_end_s: goAway is sent this long before the connection ends.
        handle_validity_s: how long a session resumption handle stays valid.
        default_silence_ms: VAD end-of-speech silence when the client sets no silenceDurationMs.
        seed: makes ids, handles and synthetic speech deterministic.
        scenario: scripted turns; rule-based replies are used when no scripted turn matches.
        reply_delay_s: delay before the model starts answering a user turn.
        ms_per_char: synthetic speech duration per character of reply text.
        default_transcript: what an audio utterance "said" when nothing else provides a transcript.
        lifetime_close_code: close code sent when the connection lifetime ends.
        lifetime_close_reason: close reason sent when the connection lifetime ends.
        token_expire_s: default ephemeral token expiry.
        token_new_session_s: default ephemeral token new-session window.
        huge_frame_bytes: size of the frame sent by the "huge" fault.
        unauthenticated_wait_s: how long a bad-key connection waits for the setup before closing.
        retired_models: model names closed 1008 as retired; None = ``models.RETIRED``.
        vertex_only_fields: accept the setup fields only Vertex AI knows (``explicitVadSignal``,
            ``sessionResumption.transparent``); the Gemini API rejects them as unknown names.
        interim_every_ms: with interim transcription, one more word of the hypothesis per this
            much utterance audio.

    """

    api_keys: frozenset[str] | None = None
    pace: float = 1.0
    audio_chunk_ms: int | tuple[int, int] = (200, 240)
    connection_lifetime_s: float = 600.0
    go_away_before_end_s: float = 60.0
    handle_validity_s: float = 7200.0
    default_silence_ms: int = 500
    seed: int = 0
    scenario: Scenario | None = None
    reply_delay_s: float = 0.0
    ms_per_char: float = 55.0
    default_transcript: str = "Hello."
    lifetime_close_code: int = LIFETIME_CLOSE_CODE
    lifetime_close_reason: str = LIFETIME_CLOSE_REASON
    token_expire_s: float = 1800.0
    token_new_session_s: float = 60.0
    huge_frame_bytes: int = 20 * 1024 * 1024
    unauthenticated_wait_s: float = 2.0
    retired_models: frozenset[str] | None = None
    vertex_only_fields: bool = False
    interim_every_ms: int = 300
