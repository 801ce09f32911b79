"""The Live protocol as a state machine without I/O.

Server frames in, events out; intents in, frames out: the shape of h11, wsproto and
``websockets.protocol``.

``LiveProtocol`` is the one owner of a logical Live session's state across its connections:

- the connection *generation*: each websocket (the first, a reconnect, a goAway rollover) gets
  the next number; frames and failures are always reported with the generation they belong to,
  so nothing from a dead connection is mistaken for the current one;
- the *turn* state: idle, generating, waiting for BLOCKING tool results, interrupted. Every
  model turn is bracketed by ``TurnStarted`` / ``TurnEnded`` (or ``TurnLost`` when its
  connection died: its output is withdrawn and the answer comes again in a new turn), and
  carries its *cause*: the user request it answers, a tool result it follows up, or nothing;
- *requests*: each user input (a text turn, an audio utterance) gets an id;
- *tool calls* by id, with the request they serve and what happened to them;
- the *replay log* of client messages and their acknowledgements (by
  ``lastConsumedClientMessageIndex`` when the server gives it, by turn boundaries otherwise),
  the *resumption handle*, and the goAway / reconnect decisions.

Exactly-once device actions. A user request is replayed after a reconnect only if the server
had not started to answer it. Once a tool call of the request arrived, the request is never sent
again: the resumed connection gets a *recap* instead (a user-role note naming the request, the
calls already carried out once with their results, and "do not call them again"), and results of
calls the resumed server state does not know go there as notes too. A call the resumed state
does know (a handle issued after it) gets its result on the new connection as a normal
toolResponse. A repeated call on a later connection for the same request, with the same
function and arguments, is answered from the first execution and never reaches Home Assistant.

The caller (``driver.py``) does the I/O: it opens a websocket when told (``OpenConnection``),
passes every frame to ``receive`` and every failure to ``connection_lost``, writes what
``data_to_send`` returns and hands the other events to the session's consumer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
import logging
from typing import Final

import orjson

from .errors import CannotConnectError, InvalidArgumentError, LiveError, SessionClosedError
from .messages import (
    INPUT_AUDIO_RATE,
    NEED_MORE_INPUT,
    NORMAL_TURN_ENDS,
    AudioOut,
    Behavior,
    FunctionCall,
    FunctionResult,
    GenerationComplete,
    GoAway,
    Grounding,
    InputTranscription,
    InteractionStatus,
    InterimTranscription,
    Interrupted,
    JsonObject,
    OutputTranscription,
    ProtocolError,
    ResumptionUpdate,
    Scheduling,
    ServerEvent,
    SetupComplete,
    SetupConfig,
    TextOut,
    ToolCall,
    ToolCallCancellation,
    TurnComplete,
    Usage,
    VoiceActivity,
    activity_end,
    activity_start,
    audio_stream_end,
    build_setup,
    client_content,
    encode,
    parse_server_message,
    realtime_audio_frame,
    realtime_text,
    realtime_video,
    tool_response,
)
from .models import ModelCapabilities, api_version, check_setup

_LOGGER = logging.getLogger(__name__)

DEFAULT_BACKOFF: Final = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
FOLLOWUP_SCHEDULING: Final = frozenset({Scheduling.WHEN_IDLE, Scheduling.INTERRUPT})


# ------------------------------------------------------------------------------------------------
# Events
# ------------------------------------------------------------------------------------------------


class CauseKind(StrEnum):
    """Why the model speaks."""

    REQUEST = "request"  # it answers a user request
    FOLLOWUP = "followup"  # it follows up a tool result (WHEN_IDLE / INTERRUPT scheduling)
    UNSOLICITED = "unsolicited"  # proactive audio, or nothing we can attribute


@dataclass(frozen=True, slots=True)
class Cause:
    """The cause of a model turn; ``request`` is the user request it belongs to, if any."""

    kind: CauseKind
    request: int | None = None


@dataclass(frozen=True, slots=True)
class TurnStarted:
    """A model turn begins; its output follows until ``TurnEnded`` or ``TurnLost``."""

    turn: int
    cause: Cause


@dataclass(frozen=True, slots=True)
class TurnEnded:
    """The model turn is over (``turnComplete``)."""

    turn: int
    cause: Cause
    interrupted: bool = False
    reason: str | None = None
    waiting_for_input: bool = False
    in_progress: bool = False  # the model works on (background reasoning): more turns follow

    @property
    def abnormal(self) -> bool:
        """Whether the turn ended for another reason than finishing (safety, bad call...)."""
        return self.reason is not None and self.reason not in NORMAL_TURN_ENDS

    @property
    def needs_more_input(self) -> bool:
        """The model asked the user something and waits for the answer."""
        return self.waiting_for_input or self.reason == NEED_MORE_INPUT


@dataclass(frozen=True, slots=True)
class TurnLost:
    """The turn's connection died: withdraw its output; the answer comes in a new turn."""

    turn: int
    cause: Cause


@dataclass(frozen=True, slots=True)
class Reconnected:
    """A new connection replaced the previous one."""

    resumed: bool  # the server state was restored from a resumption handle
    reason: str
    replayed: int  # client messages sent again
    recap: bool  # a recap of requests whose answer was cut off was sent


@dataclass(frozen=True, slots=True)
class HandleUpdated:
    """The newest resumption handle (None: the stored one was refused, forget it)."""

    handle: str | None


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """The final event: closed by its owner (SessionClosedError) or failed (auth, model...)."""

    error: LiveError


@dataclass(frozen=True, slots=True)
class OpenConnection:
    """Instruction to the driver: open connection ``gen`` after ``delay`` seconds."""

    gen: int
    delay: float
    reason: str
    rollover: bool = False  # the current connection keeps running meanwhile (goAway)


@dataclass(frozen=True, slots=True)
class CloseConnection:
    """Instruction to the driver: close connection ``gen`` (retired or refused)."""

    gen: int


type Instruction = OpenConnection | CloseConnection
type ProtocolEvent = (
    AudioOut
    | TextOut
    | OutputTranscription
    | InputTranscription
    | InterimTranscription
    | Interrupted
    | GenerationComplete
    | Grounding
    | ToolCall
    | ToolCallCancellation
    | Usage
    | VoiceActivity
    | TurnStarted
    | TurnEnded
    | TurnLost
    | Reconnected
    | HandleUpdated
    | SessionEnded
    | Instruction
)

# ------------------------------------------------------------------------------------------------
# Internal state
# ------------------------------------------------------------------------------------------------


class _Kind(StrEnum):
    AUDIO = "audio"
    VIDEO = "video"
    ACTIVITY = "activity"
    TURN = "turn"  # a user text turn (a request)
    NOTE = "note"  # clientContent that is not a request (interrupt note, recap)
    TOOL_RESPONSE = "tool_response"


@dataclass(slots=True, eq=False)
class _Sent:
    """A client message kept until the server state is known to include it."""

    seq: int
    frame: bytes  # the encoded text frame
    kind: _Kind
    request: int | None = None
    audio_us: int = 0  # microseconds of audio (integers: no drift over hours)
    call_id: str | None = None
    gen: int = -1  # connection it was last written on (-1: not yet)
    index: int = -1  # its index among the client messages of that connection
    dropped: bool = False  # audio beyond the replay bound: never sent again


class _RequestState(StrEnum):
    NEW = "new"  # sent, not answered yet
    ANSWERING = "answering"  # a turn answering it started
    ANSWERED = "answered"  # that turn ended
    ABANDONED = "abandoned"  # its owner gave up (no speech heard, timed out)


@dataclass(slots=True, eq=False)
class _Request:
    id: int
    text: str = ""  # the text, or the input transcription of spoken requests
    spoken: bool = False
    state: _RequestState = _RequestState.NEW
    calls: list[str] = field(default_factory=list)  # call ids, in order
    answer: str = ""  # what the model answered (for a recap of an answered request)


@dataclass(slots=True, eq=False)
class _Call:
    call: FunctionCall
    request: int | None
    gen: int
    in_handle: bool = False  # a resumption handle issued after it includes it
    result: FunctionResult | None = None
    cancelled: bool = False
    noted: bool = False  # its result went to the model in a recap or note (not a toolResponse)
    duplicates: list[str] = field(default_factory=list)  # later identical calls, answered with it


@dataclass(slots=True, eq=False)
class _Turn:
    id: int
    cause: Cause
    gen: int
    interrupted: bool = False
    generation_complete: bool = False
    blocking_calls: set[str] = field(default_factory=set)  # BLOCKING calls it waits for
    text: list[str] = field(default_factory=list)  # its words (transcription or text)


@dataclass(slots=True, eq=False)
class _Connection:
    gen: int
    reason: str
    rollover: bool
    handle: str | None  # the handle its setup resumes
    open: bool = False  # setupComplete received
    sent: int = 0  # client messages written on it after the setup


# ------------------------------------------------------------------------------------------------
# The state machine
# ------------------------------------------------------------------------------------------------


class LiveProtocol:
    """One logical Live session across connections. No I/O, no clock, no asyncio."""

    def __init__(
        self,
        setup: SetupConfig,
        *,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        replay_audio_s: float = 30.0,
    ) -> None:
        """Check the setup against the model (UnsupportedOptionError before any I/O)."""
        self.caps: ModelCapabilities = check_setup(setup)
        self.setup = setup
        self.api_version = api_version(setup)
        self._backoff = tuple(backoff)
        self._replay_audio_us = round(replay_audio_s * 1_000_000)
        self._handle: str | None = setup.resumption_handle
        self._events: deque[ProtocolEvent] = deque()
        self._outbox: deque[tuple[int, bytes]] = deque()
        # connections
        self._gen = 0
        self._active: _Connection | None = None  # the connection client messages go to
        self._pending: _Connection | None = None  # being opened (reconnect or rollover)
        self._attempt = 0
        self._rollover_wanted = False
        self._lost_reason = ""
        # client messages
        self._log: deque[_Sent] = deque()
        self._audio_log: deque[_Sent] = deque()  # the audio entries of _log, oldest first
        self._audio_us = 0
        self._seq = 0
        self._boundary_seq = -1  # last seq written on the active connection before turnComplete
        # requests, calls, turns
        self._requests: dict[int, _Request] = {}
        self._request_ids = 0
        self._audio_request: int | None = None  # the spoken request audio goes to
        self._calls: dict[str, _Call] = {}
        self._executed: dict[tuple[int | None, str, bytes], str] = {}  # dedupe key -> call id
        self._followups: deque[int | None] = deque()  # requests whose results will be spoken
        self._in_progress: deque[int] = deque()  # requests the model still works on (background)
        self._partial_args: dict[str, JsonObject] = {}  # streamed calls' arguments so far
        self._turn: _Turn | None = None
        self._turn_ids = 0
        self._closed = False
        self._failed: LiveError | None = None
        self._ever_open = False
        self.reconnects = 0
        self.session_id: str | None = None  # the server's id of the current connection

    # ------------------------------------------------------------------ state

    @property
    def handle(self) -> str | None:
        """The newest resumption handle."""
        return self._handle

    @property
    def active_gen(self) -> int | None:
        """Generation of the connection client messages go to (None while none is open)."""
        return self._active.gen if self._active is not None and self._active.open else None

    @property
    def turn(self) -> int | None:
        """The model turn in progress, if any."""
        return self._turn.id if self._turn is not None else None

    @property
    def model_busy(self) -> bool:
        """Whether the model is producing a turn or waits for a BLOCKING result."""
        return self._turn is not None

    @property
    def closed(self) -> bool:
        """Whether the session ended (closed by its owner or failed)."""
        return self._closed

    @property
    def failure(self) -> LiveError | None:
        """The error the session failed with, if it did."""
        return self._failed

    @property
    def unacknowledged(self) -> int:
        """Client messages that would be sent again on a reconnect."""
        return sum(1 for e in self._log if not e.dropped)

    @property
    def replay_audio_s(self) -> float:
        """Seconds of microphone audio kept for replay."""
        return self._audio_us / 1_000_000

    # ------------------------------------------------------------------ outputs

    def events(self) -> list[ProtocolEvent]:
        """Take the events produced so far (instructions for the driver included)."""
        out = list(self._events)
        self._events.clear()
        return out

    @property
    def has_data_to_send(self) -> bool:
        """Whether ``data_to_send`` would return frames (it takes them; this does not)."""
        return bool(self._outbox)

    def data_to_send(self) -> list[tuple[int, bytes]]:
        """Take the frames to write, each with the generation of its connection."""
        out = list(self._outbox)
        self._outbox.clear()
        return out

    # ------------------------------------------------------------------ connections

    def start(self) -> None:
        """Ask for the first connection."""
        if self._active is None and self._pending is None and not self._closed:
            self._open("start", delay=0.0)

    def setup_frame(self, gen: int) -> bytes:
        """The setup message for connection ``gen``: it resumes the newest handle."""
        conn = self._conn(gen)
        if conn is not None:
            conn.handle = self._handle
        return encode(build_setup(replace(self.setup, resumption_handle=self._handle)))

    def is_open(self, gen: int) -> bool:
        """Whether connection ``gen`` completed its setup and is in use."""
        conn = self._conn(gen)
        return conn is not None and conn.open

    def _conn(self, gen: int) -> _Connection | None:
        for conn in (self._pending, self._active):
            if conn is not None and conn.gen == gen:
                return conn
        return None

    def _open(self, reason: str, *, delay: float, rollover: bool = False) -> None:
        self._gen += 1
        self._pending = _Connection(self._gen, reason, rollover, self._handle)
        self._events.append(OpenConnection(self._gen, delay, reason, rollover))

    def receive(self, gen: int, frame: bytes | str) -> None:
        """A frame arrived on connection ``gen``. Malformed frames are logged and skipped."""
        conn = self._conn(gen)
        if conn is None or self._closed:
            return  # a retired connection's late frame
        try:
            events = parse_server_message(frame)
        except ProtocolError as err:
            head = frame[:120]
            preview = head if isinstance(head, str) else head.decode(errors="replace")
            _LOGGER.warning("Skipping malformed Live server frame (%s): %r", err, preview)
            return
        for event in events:
            if not conn.open:
                if isinstance(event, SetupComplete):
                    self.session_id = event.session_id
                    self._setup_complete(conn)
                else:
                    _LOGGER.debug("Ignoring %s before setupComplete", type(event).__name__)
                continue
            if conn is not self._active:
                continue  # a retired or standby connection
            self._on_event(conn, event)

    def connection_lost(self, gen: int, error: LiveError) -> None:
        """Connection ``gen`` failed to open or ended; ``error`` says why."""
        if self._closed:
            return
        if self._pending is not None and self._pending.gen == gen:
            self._pending = None
            if isinstance(error, InvalidArgumentError) and self._handle is not None:
                # The handle was refused (expired, another model's): start afresh.
                _LOGGER.info("Resumption handle refused (%s); starting a fresh session", error)
                self._handle = None
                self._events.append(HandleUpdated(None))
                self._open("handle refused", delay=0.0)
            elif not self._ever_open:
                self._fail(error)  # the first connection: fail fast, the caller reports it
            elif self._active is not None:
                # A goAway rollover failed; the current connection still runs.
                if error.retryable:
                    self._rollover_wanted = True
                else:
                    self._fail(error)
            else:
                self._retry(error)
            return
        if self._active is None or self._active.gen != gen:
            return  # a retired connection
        _LOGGER.info("Live connection lost (%s)", error)
        self._lose_active()
        if not error.retryable:
            self._fail(error)
        elif self._pending is None:
            self._retry(error)
        # else: a rollover connection is on its way and takes over

    def _retry(self, error: LiveError) -> None:
        if self._attempt >= len(self._backoff):
            if not isinstance(error, CannotConnectError):
                error = CannotConnectError(f"could not reconnect to the Live service: {error}")
            self._fail(error)
            return
        delay = self._backoff[self._attempt]
        self._attempt += 1
        self._open(str(error) or type(error).__name__, delay=delay)

    def _lose_active(self) -> None:
        """The active connection is gone: unsent frames wait for the next one; its turn is lost."""
        assert self._active is not None
        gen = self._active.gen
        self._outbox = deque((g, f) for g, f in self._outbox if g != gen)
        self._events.append(CloseConnection(gen))
        self._active = None
        turn, self._turn = self._turn, None
        if turn is None:
            return
        if turn.generation_complete or turn.interrupted:
            self._end_turn(turn)  # fully generated (or cut short by the user): it stands
            return
        self._events.append(TurnLost(turn.id, turn.cause))
        if turn.cause.kind is CauseKind.REQUEST and turn.cause.request in self._requests:
            self._requests[turn.cause.request].state = _RequestState.NEW  # answer it again
        elif turn.cause.kind is CauseKind.FOLLOWUP:
            self._followups.appendleft(turn.cause.request)

    def _setup_complete(self, conn: _Connection) -> None:
        conn.open = True
        old = self._active
        if conn.rollover and old is not None:
            if not self._idle() or conn.handle != self._handle:
                # A turn started, or a newer handle arrived, while it was opening.
                self._pending = None
                self._rollover_wanted = True
                self._events.append(CloseConnection(conn.gen))
                return
            self._events.append(CloseConnection(old.gen))
        self._pending = None
        self._active = conn
        self._attempt = 0
        self._boundary_seq = -1
        replayed, recap = self._replay(conn)
        if self._ever_open:
            self.reconnects += 1
            self._events.append(Reconnected(conn.handle is not None, conn.reason, replayed, recap))
        self._ever_open = True

    # ------------------------------------------------------------------ server events

    def _on_event(self, conn: _Connection, event: ServerEvent) -> None:
        match event:
            case AudioOut():
                self._model_output(conn)
                self._events.append(event)
            case OutputTranscription(text=text) | TextOut(text=text, thought=False):
                self._model_output(conn).text.append(text)
                self._events.append(event)
            case TextOut() | Grounding():
                self._model_output(conn)
                self._events.append(event)
            case ToolCall(calls=calls):
                turn = self._model_output(conn)
                if fresh := self._tool_calls(conn, turn, calls):
                    self._events.append(ToolCall(tuple(fresh)))
            case ToolCallCancellation(ids=ids):
                for call_id in ids:
                    if (call := self._calls.get(call_id)) is not None:
                        call.cancelled = True
                    if self._turn is not None:
                        self._turn.blocking_calls.discard(call_id)
                self._events.append(event)
            case Interrupted():
                if self._turn is not None:
                    self._turn.interrupted = True
                    self._events.append(event)
            case GenerationComplete():
                self._model_output(conn).generation_complete = True
                self._events.append(event)
            case TurnComplete(reason=reason, waiting_for_input=waiting):
                turn = self._turn or self._start_turn(conn)
                self._turn = None
                self._boundary_seq = max(
                    (e.seq for e in self._log if e.gen == conn.gen), default=self._boundary_seq
                )
                if not self.setup.session_resumption:
                    self._ack_through(self._boundary_seq)  # nothing to resume: nothing to replay
                in_progress = event.interaction_status is InteractionStatus.IN_PROGRESS
                if event.interaction_status is InteractionStatus.IDLE:
                    self._finish_in_progress()
                self._end_turn(turn, reason=reason, waiting=waiting, in_progress=in_progress)
                self._maybe_rollover()
            case ResumptionUpdate(new_handle=handle, resumable=True) if handle:
                self._handle = handle
                for call in self._calls.values():
                    if call.gen == conn.gen:
                        call.in_handle = True
                if event.last_consumed_index is not None:
                    self._ack_index(conn.gen, event.last_consumed_index)
                else:
                    self._ack_through(self._boundary_seq)
                self._events.append(HandleUpdated(handle))
                self._maybe_rollover()
            case GoAway(time_left=left):
                _LOGGER.debug("goAway: %s s left on this connection", left)
                self._rollover_wanted = True
                if self.setup.session_resumption:
                    self._maybe_rollover()  # at the next boundary
                elif self._pending is None:
                    self._rollover_wanted = False
                    self._open("goAway", delay=0.0, rollover=True)  # nothing to resume: now
            case InterimTranscription():
                self._events.append(event)
            case InputTranscription(text=text):
                if text and (request := self._spoken_request()) is not None:
                    request.text += text
                self._events.append(event)
            case Usage() | VoiceActivity():
                self._events.append(event)
            case _:
                pass  # setupComplete again, a non-resumable update

    def _spoken_request(self) -> _Request | None:
        """The spoken request input transcription belongs to (the newest one)."""
        if self._audio_request is not None:
            return self._requests.get(self._audio_request)
        for request in reversed(self._requests.values()):
            if request.spoken:
                return request
        return None

    def _model_output(self, conn: _Connection) -> _Turn:
        turn = self._turn
        if turn is not None and turn.interrupted:
            # Output after ``interrupted`` with no turnComplete in between: a new turn.
            self._turn = None
            self._end_turn(turn)
            turn = None
        return turn or self._start_turn(conn)

    def _start_turn(self, conn: _Connection) -> _Turn:
        self._turn_ids += 1
        cause = self._next_cause()
        turn = self._turn = _Turn(self._turn_ids, cause, conn.gen)
        if cause.kind is CauseKind.REQUEST and cause.request is not None:
            self._requests[cause.request].state = _RequestState.ANSWERING
            if self._audio_request == cause.request:
                self._audio_request = None  # the utterance is over: later audio is a new one
        self._events.append(TurnStarted(turn.id, cause))
        return turn

    def _next_cause(self) -> Cause:
        """The cause of a model turn that starts now.

        The oldest unanswered request; else a request the model still works on (background
        reasoning: this turn goes on answering it); else the oldest expected follow-up.
        """
        for request in self._requests.values():
            if request.state is _RequestState.NEW:
                return Cause(CauseKind.REQUEST, request.id)
        if self._in_progress:
            request_id = self._in_progress[0]
            if request_id in self._followups:
                self._followups.remove(request_id)  # this turn is that result's follow-up
            return Cause(CauseKind.REQUEST, request_id)
        if self._followups:
            return Cause(CauseKind.FOLLOWUP, self._followups.popleft())
        return Cause(CauseKind.UNSOLICITED)

    def _finish_in_progress(self) -> None:
        """IDLE: the whole task is done; requests worked on in the background are answered."""
        while self._in_progress:
            if (request := self._requests.get(self._in_progress.popleft())) is not None:
                request.state = _RequestState.ANSWERED

    def _end_turn(
        self,
        turn: _Turn,
        *,
        reason: str | None = None,
        waiting: bool = False,
        in_progress: bool = False,
    ) -> None:
        request = self._requests.get(turn.cause.request) if turn.cause.request else None
        if request is not None:
            request.answer += "".join(turn.text)
            if in_progress and not turn.interrupted:
                if request.id not in self._in_progress:
                    self._in_progress.append(request.id)  # more turns answer it
            elif (
                turn.cause.kind is CauseKind.REQUEST
                and request.state is _RequestState.ANSWERING
                and request.id not in self._in_progress
            ):
                request.state = _RequestState.ANSWERED
        self._events.append(
            TurnEnded(turn.id, turn.cause, turn.interrupted, reason, waiting, in_progress)
        )
        self._forget_finished()

    def _tool_calls(
        self, conn: _Connection, turn: _Turn, calls: Iterable[FunctionCall]
    ) -> list[FunctionCall]:
        """Record the calls; answer repeats of calls made before a reconnect; return the rest."""
        request = turn.cause.request
        fresh: list[FunctionCall] = []
        for streamed in calls:
            if (call := self._complete_call(streamed)) is None:
                continue  # more of its arguments follow: it must not run yet
            key = (request, call.name, orjson.dumps(call.args, option=orjson.OPT_SORT_KEYS))
            self._calls[call.id] = _Call(call, request, conn.gen)
            if request is not None and request in self._requests:
                self._requests[request].calls.append(call.id)
            if self._is_blocking(call):
                turn.blocking_calls.add(call.id)
            first = self._calls.get(self._executed.get(key, ""))
            if first is not None and first.gen != conn.gen and not first.cancelled:
                # The same call for the same request again, after a reconnect: it was carried
                # out once already, so it is answered from that execution.
                _LOGGER.info("Repeated %s after a reconnect answered from its first run", call.name)
                first.duplicates.append(call.id)
                if first.result is not None:
                    self._answer_duplicates(first)
                continue
            self._executed[key] = call.id
            fresh.append(call)
        return fresh

    def _complete_call(self, call: FunctionCall) -> FunctionCall | None:
        """A streamed call (partialArgs / willContinue) once its arguments are complete."""
        args = self._partial_args.setdefault(call.id, {})
        for piece in call.partial:
            path = str(piece.get("jsonPath", ""))
            if not path.startswith("$.") or "." in path[2:] or "[" in path:
                continue  # only top-level arguments are streamed as pieces we can assemble
            key = path[2:]
            if "stringValue" in piece:
                args[key] = str(args.get(key, "")) + str(piece["stringValue"])
            elif "numberValue" in piece:
                args[key] = piece["numberValue"]
            elif "boolValue" in piece:
                args[key] = bool(piece["boolValue"])
            elif "nullValue" in piece:
                args[key] = None
        if call.will_continue:
            return None
        del self._partial_args[call.id]
        if call.args or not args:
            return call
        return replace(call, args=args, partial=())

    def _is_blocking(self, call: FunctionCall) -> bool:
        if not self.caps.non_blocking:
            return True
        for decl in self.setup.functions:
            if decl.name == call.name:
                behavior = decl.behavior
                if behavior is None:
                    return not self.caps.non_blocking_default
                return behavior is Behavior.BLOCKING
        return True

    def _answer_duplicates(self, first: _Call) -> None:
        assert first.result is not None
        results: list[FunctionResult] = []
        for dup_id in first.duplicates:
            if (dup := self._calls.get(dup_id)) is None or dup.cancelled:
                continue
            dup.result = replace(first.result, id=dup_id, name=dup.call.name)
            results.append(dup.result)
            if self._turn is not None:
                self._turn.blocking_calls.discard(dup_id)
        first.duplicates.clear()
        self._deliver_results(results)

    # ------------------------------------------------------------------ acknowledgements

    def _ack_through(self, seq: int) -> None:
        while self._log and self._log[0].gen >= 0 and self._log[0].seq <= seq:
            self._pop_acked()
        self._purge_dropped()

    def _ack_index(self, gen: int, index: int) -> None:
        while self._log and self._log[0].gen == gen and self._log[0].index <= index:
            self._pop_acked()
        self._purge_dropped()

    def _pop_acked(self) -> None:
        entry = self._log.popleft()
        if entry.kind is _Kind.AUDIO and not entry.dropped:
            entry.dropped = True  # leaves _audio_log lazily
            self._audio_us -= entry.audio_us
        if entry.kind is _Kind.TOOL_RESPONSE and entry.call_id is not None:
            self._calls.pop(entry.call_id, None)  # the server state has its answer for good

    def _purge_dropped(self) -> None:
        while self._log and self._log[0].dropped:
            self._log.popleft()
        while self._audio_log and self._audio_log[0].dropped:
            self._audio_log.popleft()

    def _forget_finished(self) -> None:
        """Drop the bookkeeping of requests nothing refers to any more (at turn ends)."""
        live: set[int | None] = {e.request for e in self._log}
        live.update(c.request for c in self._calls.values())
        live.update(self._followups)
        live.update(self._in_progress)
        live.add(self._audio_request)
        for request_id, request in list(self._requests.items()):
            if request_id not in live and request.state in (
                _RequestState.ANSWERED,
                _RequestState.ABANDONED,
            ):
                del self._requests[request_id]
        self._executed = {k: v for k, v in self._executed.items() if v in self._calls}

    # ------------------------------------------------------------------ replay

    def _replay(self, conn: _Connection) -> tuple[int, bool]:
        """Write what the new connection's server state lacks; return (replayed, recap sent)."""
        replayed = 0
        kept: deque[_Sent] = deque()
        recaps: dict[int, _Request] = {}
        notes: list[_Call] = []
        for entry in self._log:
            if entry.dropped:
                continue
            request = self._requests.get(entry.request) if entry.request is not None else None
            if request is not None and entry.kind is not _Kind.TOOL_RESPONSE:
                if request.state is _RequestState.ABANDONED:
                    continue  # nobody waits for it
                if request.calls or request.state is _RequestState.ANSWERED:
                    # Its answer had started (with calls) or is complete: never send it again.
                    recaps[request.id] = request
                    continue
            if entry.kind is _Kind.TOOL_RESPONSE and not self._known_to(entry.call_id, conn):
                call = self._calls.get(entry.call_id or "")
                if call is not None:
                    if call.request in recaps or (
                        request is not None and request.calls and request.id in recaps
                    ):
                        pass  # the request's recap carries the result
                    else:
                        notes.append(call)
                continue
            if entry.gen >= 0:
                replayed += 1
            self._write(conn, entry)
            kept.append(entry)
        self._log = kept
        self._audio_log = deque(e for e in kept if e.kind is _Kind.AUDIO)
        self._audio_us = sum(e.audio_us for e in self._audio_log)
        for request in sorted(recaps.values(), key=lambda r: r.id):
            self._send_recap(request)
        for call in notes:
            if call.result is not None:
                self._result_note(call, call.result)
        if replayed:
            _LOGGER.debug("Replayed %d client messages on the new connection", replayed)
        return replayed, bool(recaps)

    def _known_to(self, call_id: str | None, conn: _Connection) -> bool:
        """Whether the server state of ``conn`` knows the call (and waits for its result)."""
        call = self._calls.get(call_id) if call_id is not None else None
        if call is None:
            return False
        return call.gen == conn.gen or (call.in_handle and conn.handle is not None)

    def _send_recap(self, request: _Request) -> None:
        """Tell the resumed model what happened to a request it will never see again."""
        lines = ["(The connection to you was interrupted and has been restored."]
        if said := request.text.strip():
            lines.append(f'The user\'s request was: "{said}".')
        for call_id in request.calls:
            call = self._calls.get(call_id)
            if call is None or call.cancelled:
                continue
            args = orjson.dumps(call.call.args).decode()
            if call.result is not None:
                result = orjson.dumps(call.result.response).decode()
                lines.append(
                    f"You called {call.call.name}({args}); it was carried out once and "
                    f"returned {result}."
                )
                call.noted = True
            else:
                lines.append(
                    f"You called {call.call.name}({args}); it is running, its result follows."
                )
        if request.calls:
            lines.append("Do not call these functions again for this request.")
        answer_due = request.state is _RequestState.NEW
        if answer_due:
            lines.append("Now answer the user.)")
        else:
            if answer := request.answer.strip():
                lines.append(f'You answered: "{answer}".')
            lines.append("Nothing more to do for it.)")
        self._log_and_write(
            encode(client_content([("user", " ".join(lines))], turn_complete=answer_due)),
            _Kind.NOTE,
            request=request.id,
        )

    # ------------------------------------------------------------------ client messages

    def _log_and_write(
        self,
        frame: bytes,
        kind: _Kind,
        *,
        request: int | None = None,
        audio_us: int = 0,
        call_id: str | None = None,
    ) -> None:
        if self._closed:
            raise self._failed or SessionClosedError("the Live session was closed")
        entry = _Sent(self._seq, frame, kind, request, audio_us, call_id)
        self._seq += 1
        self._log.append(entry)
        if kind is _Kind.AUDIO:
            self._audio_log.append(entry)
            self._audio_us += audio_us
            self._bound_audio()
        if self._active is not None and self._active.open:
            self._write(self._active, entry)

    def _write(self, conn: _Connection, entry: _Sent) -> None:
        entry.gen, entry.index = conn.gen, conn.sent
        conn.sent += 1
        self._outbox.append((conn.gen, entry.frame))

    def _bound_audio(self) -> None:
        """Keep at most ``replay_audio_s`` seconds of audio for replay, O(1) per message."""
        if self._audio_us <= self._replay_audio_us:
            return  # nothing to drop (most messages: the server acknowledges audio as it goes)
        while self._audio_us > self._replay_audio_us and self._audio_log:
            oldest = self._audio_log.popleft()
            if not oldest.dropped:
                oldest.dropped = True
                oldest.frame = b""  # the entry may wait in the log until acknowledged
                self._audio_us -= oldest.audio_us
        self._purge_dropped()

    def _new_request(self, text: str = "", *, spoken: bool = False) -> int:
        self._request_ids += 1
        self._requests[self._request_ids] = _Request(self._request_ids, text, spoken)
        return self._request_ids

    def send_text(self, text: str) -> int:
        """A user text turn (clientContent). Returns its request id."""
        request = self._new_request(text)
        self._log_and_write(encode(client_content(text)), _Kind.TURN, request=request)
        return request

    def send_realtime_text(self, text: str) -> int:
        """A user text as realtime input. Returns its request id."""
        request = self._new_request(text)
        self._log_and_write(encode(realtime_text(text)), _Kind.TURN, request=request)
        return request

    def begin_speech(self) -> int:
        """A new spoken request: the audio sent from now on. Returns its request id."""
        if self._closed:
            raise self._failed or SessionClosedError("the Live session was closed")
        self._audio_request = self._new_request(spoken=True)
        return self._audio_request

    def send_audio(self, pcm: bytes, rate: int = INPUT_AUDIO_RATE) -> None:
        """Microphone audio (PCM16 mono).

        It belongs to the spoken request begun last, until the model starts answering it; audio
        after that (a microphone's tail) belongs to no request.
        """
        self._log_and_write(
            realtime_audio_frame(pcm, rate),
            _Kind.AUDIO,
            request=self._audio_request,
            audio_us=len(pcm) // 2 * 1_000_000 // rate,
        )

    def send_video(self, image: bytes, mime_type: str = "image/jpeg") -> None:
        """One video frame / image."""
        self._log_and_write(encode(realtime_video(image, mime_type)), _Kind.VIDEO)

    def activity_start(self) -> None:
        """Manual activity start of the spoken request (begun now if none is)."""
        if self._audio_request is None:
            self.begin_speech()
        self._log_and_write(encode(activity_start()), _Kind.ACTIVITY, request=self._audio_request)

    def activity_end(self) -> None:
        """Manual activity end."""
        self._log_and_write(encode(activity_end()), _Kind.ACTIVITY, request=self._audio_request)

    def audio_stream_end(self) -> None:
        """The microphone stream paused (automatic VAD): the server flushes its audio."""
        self._log_and_write(encode(audio_stream_end()), _Kind.ACTIVITY, request=self._audio_request)

    def note(self, text: str) -> None:
        """A user-role note that is not a request (any clientContent interrupts generation)."""
        self._log_and_write(
            encode(client_content([("user", text)], turn_complete=False)), _Kind.NOTE
        )

    def abandon(self, request: int) -> None:
        """The request's owner gave up on it (no speech heard, run superseded)."""
        if (req := self._requests.get(request)) is not None and req.state is _RequestState.NEW:
            req.state = _RequestState.ABANDONED
        if self._audio_request == request:
            self._audio_request = None
        self._maybe_rollover()

    def send_tool_results(self, results: Sequence[FunctionResult]) -> None:
        """Answer calls: a toolResponse where the server state knows them, else a note."""
        if not self.caps.non_blocking:
            results = [replace(r, scheduling=None) for r in results]
        fresh: list[FunctionResult] = []
        for result in results:
            call = self._calls.get(result.id)
            if call is None or call.cancelled or call.result is not None:
                continue  # unknown, cancelled by the model (never answered), or answered
            call.result = result
            if result.scheduling in FOLLOWUP_SCHEDULING:
                self._followups.append(call.request)
            fresh.append(result)
            if call.duplicates:
                self._answer_duplicates(call)
        self._deliver_results(fresh)
        self._maybe_rollover()

    def _deliver_results(self, results: Sequence[FunctionResult]) -> None:
        active = self._active if self._active is not None and self._active.open else None
        for result in results:
            call = self._calls[result.id]
            if self._turn is not None:
                self._turn.blocking_calls.discard(result.id)
            if active is not None and not self._known_to(result.id, active):
                self._result_note(call, result)  # this server state never saw the call
                continue
            # On the wire now, or logged until a connection opens (then replayed or noted).
            self._log_and_write(
                encode(tool_response([result])),
                _Kind.TOOL_RESPONSE,
                request=call.request,
                call_id=call.call.id,
            )

    def _result_note(self, call: _Call, result: FunctionResult) -> None:
        if call.noted:
            return
        call.noted = True
        args = orjson.dumps(call.call.args).decode()
        text = (
            f"(Result of your earlier call {call.call.name}({args}), carried out once: "
            f"{orjson.dumps(result.response).decode()}. Do not call it again.)"
        )
        speak = result.scheduling is None or result.scheduling in FOLLOWUP_SCHEDULING
        self._log_and_write(
            encode(client_content([("user", text)], turn_complete=speak)), _Kind.NOTE, request=None
        )

    # ------------------------------------------------------------------ goAway, close

    def _idle(self) -> bool:
        """No turn, no utterance and no request waiting for its answer."""
        if self._turn is not None or self._audio_request is not None or self._in_progress:
            return False
        return not any(r.state is _RequestState.NEW for r in self._requests.values())

    def _maybe_rollover(self) -> None:
        if (
            self._rollover_wanted
            and self._pending is None
            and self._active is not None
            and self._active.open
            and self._idle()
        ):
            self._rollover_wanted = False
            self._open("goAway", delay=0.0, rollover=True)

    def _fail(self, error: LiveError) -> None:
        if not self._closed:
            self._failed = error
            self._end(error)

    def close(self) -> None:
        """The owner closes the session: connections close, nothing is retried."""
        if not self._closed:
            self._end(SessionClosedError("the Live session was closed"))

    def _end(self, error: LiveError) -> None:
        self._closed = True
        for conn in (self._pending, self._active):
            if conn is not None:
                self._events.append(CloseConnection(conn.gen))
        self._pending = self._active = None
        self._outbox.clear()
        if self._turn is not None:
            turn, self._turn = self._turn, None
            self._events.append(TurnLost(turn.id, turn.cause))
        self._events.append(SessionEnded(error))
