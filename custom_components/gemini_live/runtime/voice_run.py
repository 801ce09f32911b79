"""One voice pipeline run: the link between its STT stream, agent turn and TTS stream.

HA has no speech-to-speech API, so a voice pipeline runs our STT, our agent and our TTS as one
bridge on one Live request:

- the STT creates a ``VoiceRun``, puts it in ``CURRENT_RUN`` (the agent runs in the same task and
  the TTS task copies the context, so both see the same object; conversation_id is not per run,
  a satellite reuses it for minutes), registers it as the consumer of a new spoken request and
  streams the microphone into the conversation until the model answers;
- the agent continues that same request (no second one): it turns the run's events into
  chat-log deltas and the calls run in HA;
- the TTS yields the run's audio as it arrives.

The run is the request's only consumer: the answer's audio goes to its queue (a withdrawn
generation's audio still queued is dropped), everything else to its inbox for the agent stage.
A newer run in the same conversation (the satellite woken again while it still speaks)
supersedes it: its playback stops at once and its agent stage ends, cleanly.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass, field
import time
from typing import TYPE_CHECKING, Final

from ..live.messages import AudioOut, InputTranscription, InterimTranscription, Interrupted
from ..live.protocol import SessionEnded, TurnEnded, TurnLost, TurnStarted
from .conversation import Inbox
from .turn_stream import Superseded

if TYPE_CHECKING:
    from .reply_audio import OpenedFlac

CURRENT_RUN: ContextVar[VoiceRun | None] = ContextVar("gemini_live_voice_run", default=None)

# Audible gap after which the TTS stream sends silence (a Voice PE wedges at >= 5 s).
KEEPALIVE_AFTER_S: Final = 1.0
KEEPALIVE_CHUNK_MS: Final = 100


@dataclass(eq=False)
class VoiceRun:
    """State shared by the STT, agent and TTS of one pipeline run; the consumer of its request."""

    agent_id: str  # subentry id of the agent whose STT started the run
    conversation_id: str
    started: float = field(default_factory=time.monotonic)
    device_id: str | None = None
    satellite_id: str | None = None
    request: int | None = None
    inbox: Inbox = field(default_factory=lambda: Inbox(wants_followups=False))
    audio: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    answering: asyncio.Event = field(default_factory=asyncio.Event)  # the model answers
    transcribed: asyncio.Event = field(default_factory=asyncio.Event)
    transcript: list[str] = field(default_factory=list)
    transcript_changed: asyncio.Event = field(default_factory=asyncio.Event)
    interim: str = ""  # the model's running hypothesis of the words (3.8 models)
    agent_started: bool = False
    audio_finished: bool = False
    superseded: bool = False
    playing: bool = False
    first_audio_at: float | None = None
    reply_flac: OpenedFlac | None = None  # its reply's encoder, opened while the user speaks

    @property
    def wants_followups(self) -> bool:
        """Follow-ups of a voice request are spoken later, as later replies."""
        return False

    def feed(self, item: object) -> None:
        """One event of the run's request (from the conversation's pump, in order)."""
        match item:
            case InterimTranscription(text=text):
                self.interim = text
                self.transcript_changed.set()
                return
            case InputTranscription(text=text, finished=finished):
                if text:
                    self.transcript.append(text)
                    self.transcript_changed.set()
                if finished:
                    self.transcribed.set()
                return
            case AudioOut(data=data):
                if not self.audio_finished:
                    if self.first_audio_at is None:
                        self.first_audio_at = time.monotonic()
                    self.audio.put_nowait(data)
                return
            case TurnStarted():
                self.answering.set()  # the user's utterance is over
            case TurnLost():
                self._drop_queued_audio()  # the withdrawn generation's: the answer comes again
            case Interrupted():
                self.stop_playback()  # the server's interruption ends our audio at once
            case SessionEnded():
                self.answering.set()
                self.transcribed.set()
                self.stop_playback()
            case TurnEnded():
                pass
        self.inbox.feed(item)

    @property
    def text(self) -> str:
        """The user's words (the final transcription)."""
        return "".join(self.transcript).strip()

    @property
    def heard_so_far(self) -> str:
        """The user's words so far: the final transcription, else the interim hypothesis."""
        return self.text or self.interim.strip()

    def finish_audio(self) -> None:
        """The reply is complete: the TTS stream ends after the queued audio."""
        if not self.audio_finished:
            self.audio_finished = True
            self.audio.put_nowait(None)

    def _drop_queued_audio(self) -> None:
        while not self.audio.empty():
            if self.audio.get_nowait() is None:
                self.audio.put_nowait(None)  # keep the end marker
                return

    def stop_playback(self) -> None:
        """End the TTS stream now, dropping queued audio (barge-in, interruption)."""
        self._drop_queued_audio()
        self.finish_audio()

    def supersede(self) -> None:
        """A newer run took the conversation over: release every stage of this one."""
        self.superseded = True
        self.answering.set()
        self.transcribed.set()
        self.stop_playback()
        self.inbox.feed(Superseded())


class VoiceRuns:
    """The runs of one agent, by conversation: for barge-in and later replies."""

    def __init__(self) -> None:
        """No runs yet."""
        self.by_conversation: dict[str, VoiceRun] = {}

    def start(self, run: VoiceRun) -> VoiceRun | None:
        """Register ``run``; return the conversation's previous run if it was still going."""
        previous = self.by_conversation.get(run.conversation_id)
        self.by_conversation[run.conversation_id] = run
        if previous is not None and not previous.audio_finished:
            return previous
        return None

    def latest(self, conversation_id: str) -> VoiceRun | None:
        """The conversation's most recent run."""
        return self.by_conversation.get(conversation_id)

    def forget(self, conversation_id: str) -> None:
        """The conversation closed: drop its runs."""
        self.by_conversation.pop(conversation_id, None)
