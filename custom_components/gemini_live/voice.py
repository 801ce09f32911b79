"""The voice turn of one pipeline run: links its STT stream, agent turn and TTS stream.

HA has no speech-to-speech API, so a voice pipeline runs our STT, our agent and our TTS as one
bridge on one Live turn:

- the STT creates a ``VoiceRun``, puts it in the ``CURRENT_RUN`` contextvar (the agent runs in the
  same task and the TTS task copies the context, so both see the same object; conversation_id is
  not per run, a satellite reuses it for minutes), opens (pre-warms) the conversation's Live
  session and streams the microphone into it until the Live VAD ends the utterance;
- the agent continues that same Live turn (no second request): it streams the transcript into the
  chat log and runs tools;
- the TTS yields the turn's native audio as it arrives (float32 WAV: HA's ffmpeg conversion then
  starts at once, where a PCM s16 WAV is held back 64 KiB), with silence while nothing arrives so
  a satellite never sees a long pause.

A new run in the same conversation (a satellite is woken again while it still plays a reply)
stops the previous run's playback at once (barge-in); the Live server interrupts the model when
it hears the user.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass, field
import time
from typing import Final

from .live.connection import LiveError
from .live.messages import (
    AudioOut,
    InputTranscription,
    Interrupted,
    OutputTranscription,
    TextOut,
    ToolCall,
    TurnComplete,
)
from .sessions import TurnItem

CURRENT_RUN: ContextVar[VoiceRun | None] = ContextVar("gemini_live_voice_run", default=None)

# Audible gap after which the TTS stream sends silence (a Voice PE wedges at >= 5 s).
KEEPALIVE_AFTER_S: Final = 1.0
KEEPALIVE_CHUNK_MS: Final = 100
MODEL_OUTPUT = (AudioOut, OutputTranscription, TextOut, ToolCall, TurnComplete, Interrupted)


@dataclass(eq=False)
class VoiceRun:
    """State shared by the STT, agent and TTS of one pipeline run."""

    agent_id: str  # subentry id of the agent whose STT started the run
    conversation_id: str
    started: float = field(default_factory=time.monotonic)
    device_id: str | None = None
    satellite_id: str | None = None
    audio: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    events: asyncio.Queue[TurnItem] = field(default_factory=asyncio.Queue)
    speech_ended: asyncio.Event = field(default_factory=asyncio.Event)
    transcribed: asyncio.Event = field(default_factory=asyncio.Event)
    transcript: list[str] = field(default_factory=list)
    agent_started: bool = False
    audio_finished: bool = False
    playing: bool = False
    first_audio_at: float | None = None
    stale_turn: bool = False  # attached while the model was still answering an earlier run

    def observe(self, item: TurnItem) -> None:
        """Route one session item (called by the session's pump, in order)."""
        if self.stale_turn and not isinstance(item, InputTranscription):
            # The rest of the previous run's turn (barge-in), up to and including its
            # turnComplete (which follows ``interrupted``): not an answer to this utterance.
            if isinstance(item, TurnComplete):
                self.stale_turn = False
            return
        if isinstance(item, InputTranscription):
            if item.text:
                self.transcript.append(item.text)
            if item.finished:
                self.transcribed.set()
            return
        if isinstance(item, (*MODEL_OUTPUT, LiveError)):
            self.speech_ended.set()  # the model answers: the user's utterance is over
        if isinstance(item, AudioOut):
            if not self.audio_finished:
                if self.first_audio_at is None:
                    self.first_audio_at = time.monotonic()
                self.audio.put_nowait(item.data)
            return
        if isinstance(item, Interrupted):
            self.stop_playback()  # the server's interruption ends our audio at once
        self.events.put_nowait(item)

    @property
    def text(self) -> str:
        """The user's words so far."""
        return "".join(self.transcript).strip()

    def finish_audio(self) -> None:
        """The reply is complete: the TTS stream ends after the queued audio."""
        if not self.audio_finished:
            self.audio_finished = True
            self.audio.put_nowait(None)

    def stop_playback(self) -> None:
        """End the TTS stream now, dropping queued audio (barge-in, interruption)."""
        while not self.audio.empty():
            self.audio.get_nowait()
        self.finish_audio()


class VoiceRuns:
    """The runs of one agent, by conversation: for barge-in and later replies."""

    def __init__(self) -> None:
        """No runs yet."""
        self.by_conversation: dict[str, VoiceRun] = {}

    def start(self, run: VoiceRun) -> None:
        """Register ``run``; release the conversation's previous run if it is still going."""
        previous = self.by_conversation.get(run.conversation_id)
        self.by_conversation[run.conversation_id] = run
        if previous is not None and not previous.audio_finished:
            # Superseded: release every stage of the old run, wherever it is (its STT may still
            # wait for the model's first output, which now goes to the new run).
            previous.speech_ended.set()
            previous.transcribed.set()
            previous.stop_playback()
            previous.events.put_nowait(Interrupted())  # its agent stage ends now

    def latest(self, conversation_id: str) -> VoiceRun | None:
        """The conversation's most recent run."""
        return self.by_conversation.get(conversation_id)
