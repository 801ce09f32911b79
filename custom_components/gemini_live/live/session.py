"""A resilient Live session on top of LiveConnection.

- Keeps the newest session resumption handle (and reports it, so callers can persist it).
- On ``goAway`` it opens the next connection with the newest handle while the old one still runs,
  and switches over at a turn boundary, so the user hears no gap.
- On an unexpected drop or a retryable error it reconnects with backoff, resuming with the handle.
- Every client message is kept until the server's state is known to include it, and replayed on
  the next connection otherwise, so nothing the user said is lost across a reconnect.

Replay boundary: a resumption update with ``lastConsumedClientMessageIndex`` acknowledges exactly
the messages it names. Without it (the Gemini API only sends it for ``transparent`` resumption,
which it does not support) an update acknowledges the messages sent before the turnComplete that
preceded it; anything later is replayed. Duplicating a little idle-time audio is harmless, losing
the user's words is not. Audio kept for replay is bounded (``replay_audio_s``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
import contextlib
from dataclasses import dataclass, replace
import logging
from typing import Any, Final

from .connection import CannotConnectError, Endpoint, LiveConnection, LiveError
from .messages import (
    INPUT_AUDIO_RATE,
    AudioOut,
    FunctionResult,
    GoAway,
    OutputTranscription,
    ResumptionUpdate,
    ServerEvent,
    SetupConfig,
    TextOut,
    ToolCall,
    TurnComplete,
    activity_end,
    activity_start,
    audio_stream_end,
    build_setup,
    client_content,
    encode,
    realtime_audio,
    realtime_text,
    realtime_video,
    tool_response,
)
from .models import ModelCapabilities, api_version, check_setup

_LOGGER = logging.getLogger(__name__)

type Connector = Callable[[Mapping[str, Any], str], Awaitable[LiveConnection]]

DEFAULT_BACKOFF: Final = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True, slots=True)
class Reconnected:
    """Session event: a new connection replaced the previous one."""

    resumed: bool  # True when the server state was restored from a handle
    reason: str
    replayed: int  # client messages sent again


type SessionEvent = ServerEvent | Reconnected


class SessionClosedError(LiveError):
    """The session was closed by its owner."""


@dataclass(slots=True)
class _Pending:
    seq: int
    frame: str
    audio_bytes: int
    gen: int = -1  # connection generation it was last sent on (-1: not sent yet)
    index: int = -1  # its index among the client messages of that connection


class LiveSession:
    """One logical Live conversation that survives connection changes."""

    def __init__(
        self,
        endpoint: Endpoint,
        setup: SetupConfig,
        *,
        on_handle: Callable[[str], None] | None = None,
        connector: Connector | None = None,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        replay_audio_s: float = 30.0,
    ) -> None:
        """Prepare a session; ``start`` connects. Raises UnsupportedOptionError early."""
        self.caps: ModelCapabilities = check_setup(setup)
        self._endpoint = endpoint
        self._setup = setup
        self._version = api_version(setup)
        self._handle: str | None = setup.resumption_handle
        self._on_handle = on_handle
        self._connector = connector or self._default_connector
        self._backoff = tuple(backoff)
        self._replay_audio_bytes = int(replay_audio_s * INPUT_AUDIO_RATE * 2)

        self._conn: LiveConnection | None = None
        self._gen = 0
        self._events: asyncio.Queue[SessionEvent | BaseException] = asyncio.Queue()
        self._log: deque[_Pending] = deque()
        self._log_audio = 0
        self._seq = 0
        self._boundary_seq = -1  # last seq sent before the latest turnComplete arrived
        self._send_lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._in_turn = False
        self._rollover_pending = False
        self._closed = False
        self._fatal: LiveError | None = None
        self.reconnects = 0

    # ------------------------------------------------------------------ properties

    @property
    def handle(self) -> str | None:
        """The newest resumption handle (None before the first one)."""
        return self._handle

    @property
    def connected(self) -> bool:
        """Whether a connection is currently up."""
        return self._conn is not None and not self._conn.closed

    @property
    def closed(self) -> bool:
        """Whether the session ended (closed by its owner or a fatal error)."""
        return self._closed

    @property
    def unacknowledged(self) -> int:
        """Client messages that would be replayed on a reconnect."""
        return len(self._log)

    # ------------------------------------------------------------------ lifecycle

    async def _default_connector(self, setup: Mapping[str, Any], version: str) -> LiveConnection:
        return await LiveConnection.open(self._endpoint, setup, version=version)

    def _setup_message(self) -> dict[str, Any]:
        return build_setup(replace(self._setup, resumption_handle=self._handle))

    async def start(self) -> None:
        """Open the first connection (pre-warm). Raises LiveError if it fails."""
        if self._conn is not None:
            return
        conn = await self._connector(self._setup_message(), self._version)
        await self._swap(conn)

    async def close(self) -> None:
        """Close the session and every connection; pending receives end."""
        if self._closed:
            return
        self._closed = True
        tasks = [t for t in (self._reconnect_task, self._reader) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        self._events.put_nowait(SessionClosedError("the Live session was closed"))

    async def __aenter__(self) -> LiveSession:
        """Start on entry."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Close on exit."""
        await self.close()

    # ------------------------------------------------------------------ sending

    async def send(self, message: Mapping[str, Any]) -> None:
        """Send a client message; kept for replay until the server state includes it."""
        if self._fatal is not None:
            raise self._fatal
        if self._closed:
            raise SessionClosedError("the Live session was closed")
        frame = encode(message)
        audio = 0
        if "realtimeInput" in message and "audio" in message["realtimeInput"]:
            audio = len(frame)
        entry = _Pending(self._seq, frame, audio)
        self._seq += 1
        self._log.append(entry)
        self._log_audio += audio
        self._trim_audio()
        async with self._send_lock:
            conn = self._conn
            if conn is None or conn.closed:
                return  # replayed by the reconnect
            try:
                await conn.send_text(frame)
            except LiveError as err:
                _LOGGER.debug("Send failed (%s); the message will be replayed", err)
                return
            entry.gen, entry.index = self._gen, conn.sent_count - 1

    async def send_audio(self, pcm: bytes, rate: int = INPUT_AUDIO_RATE) -> None:
        """Send PCM16 mono microphone audio."""
        await self.send(realtime_audio(pcm, rate))

    async def send_text(self, text: str, *, turn_complete: bool = True) -> None:
        """Send a user text turn (clientContent)."""
        await self.send(client_content(text, turn_complete=turn_complete))

    async def send_realtime_text(self, text: str) -> None:
        """Send text as realtime input."""
        await self.send(realtime_text(text))

    async def send_video(self, image: bytes, mime_type: str = "image/jpeg") -> None:
        """Send one video frame / image."""
        await self.send(realtime_video(image, mime_type))

    async def send_tool_response(self, results: Sequence[FunctionResult]) -> None:
        """Answer function calls (scheduling is dropped where the model has none)."""
        if not self.caps.non_blocking:
            results = [replace(r, scheduling=None) for r in results]
        await self.send(tool_response(results))

    async def activity_start(self) -> None:
        """Manual activity start."""
        await self.send(activity_start())

    async def activity_end(self) -> None:
        """Manual activity end."""
        await self.send(activity_end())

    async def audio_stream_end(self) -> None:
        """The microphone stream ended (automatic VAD)."""
        await self.send(audio_stream_end())

    def _trim_audio(self) -> None:
        if self._log_audio <= self._replay_audio_bytes:
            return
        kept: deque[_Pending] = deque()
        dropped = 0
        for entry in self._log:
            if self._log_audio > self._replay_audio_bytes and entry.audio_bytes:
                self._log_audio -= entry.audio_bytes
                dropped += 1
            else:
                kept.append(entry)
        self._log = kept
        _LOGGER.debug("Replay buffer full: dropped %d oldest audio messages", dropped)

    def _ack(self, through_seq: int | None = None, *, gen: int = -1, index: int = -1) -> None:
        while self._log:
            entry = self._log[0]
            if through_seq is not None:
                done = entry.seq <= through_seq and entry.gen >= 0
            else:
                done = entry.gen == gen and entry.index <= index
            if not done:
                break
            self._log.popleft()
            self._log_audio -= entry.audio_bytes

    # ------------------------------------------------------------------ receiving

    async def receive(self) -> SessionEvent:
        """Next event. Raises the fatal LiveError, or SessionClosedError after close."""
        item = await self._events.get()
        if isinstance(item, BaseException):
            self._events.put_nowait(item)  # every later receive raises too
            raise item
        return item

    async def __aiter__(self) -> AsyncIterator[SessionEvent]:
        """Iterate events until the session closes (fatal errors raise)."""
        while True:
            try:
                yield await self.receive()
            except SessionClosedError:
                return

    async def _read(self, conn: LiveConnection, gen: int) -> None:
        try:
            while True:
                events = await conn.recv()
                if gen != self._gen:
                    return
                for event in events:
                    self._observe(event, conn, gen)
                    self._events.put_nowait(event)
        except LiveError as err:
            if gen != self._gen or self._closed:
                return
            if err.retryable:
                _LOGGER.info("Live connection lost (%s); reconnecting", err)
                self._start_reconnect(str(err))
            else:
                self._fail(err)

    def _observe(self, event: ServerEvent, conn: LiveConnection, gen: int) -> None:
        match event:
            case AudioOut() | TextOut() | OutputTranscription() | ToolCall():
                self._in_turn = True
            case TurnComplete():
                self._in_turn = False
                self._boundary_seq = max(
                    (e.seq for e in self._log if e.gen == gen), default=self._boundary_seq
                )
                if not self._setup.session_resumption:
                    self._ack(self._boundary_seq)
            case ResumptionUpdate(new_handle=handle, resumable=True) if handle:
                self._handle = handle
                if event.last_consumed_index is not None:
                    self._ack(gen=gen, index=event.last_consumed_index)
                else:
                    self._ack(self._boundary_seq)
                if self._on_handle is not None:
                    self._on_handle(handle)
                if self._rollover_pending and not self._in_turn:
                    self._start_reconnect("goAway", rollover=True)
            case GoAway(time_left=left):
                _LOGGER.debug("goAway: %s s left on this connection", left)
                if self._in_turn or not self._setup.session_resumption:
                    self._rollover_pending = True
                    if not self._setup.session_resumption:
                        self._start_reconnect("goAway", rollover=True)
                else:
                    self._start_reconnect("goAway", rollover=True)
            case _:
                pass

    def _fail(self, err: LiveError) -> None:
        if self._fatal is None:
            self._fatal = err
            self._events.put_nowait(err)

    # ------------------------------------------------------------------ reconnecting

    def _start_reconnect(self, reason: str, *, rollover: bool = False) -> None:
        if self._reconnect_task is not None or self._closed:
            return
        self._rollover_pending = False
        self._reconnect_task = asyncio.get_running_loop().create_task(
            self._reconnect(reason, rollover), name="gemini_live_reconnect"
        )

    async def _reconnect(self, reason: str, rollover: bool) -> None:
        try:
            await self._reconnect_inner(reason, rollover)
        finally:
            self._reconnect_task = None
        conn = self._conn
        if not self._closed and self._fatal is None and conn is not None and conn.closed:
            self._start_reconnect("connection lost during reconnect")

    async def _reconnect_inner(self, reason: str, rollover: bool) -> None:
        last: LiveError | None = None
        for delay in self._backoff:
            if delay and not rollover:
                await asyncio.sleep(delay)
            handle = self._handle
            try:
                conn = await self._connector(self._setup_message(), self._version)
            except LiveError as err:
                if not err.retryable:
                    self._fail(err)
                    return
                last = err
                rollover = False  # the old connection may be gone: back off from now on
                continue
            if handle != self._handle or (rollover and self._in_turn and self.connected):
                # A newer handle arrived (or a turn started) while connecting: try again later.
                await conn.close()
                self._rollover_pending = True
                return
            self.reconnects += 1
            replayed = await self._swap(conn)
            self._events.put_nowait(Reconnected(handle is not None, reason, replayed))
            return
        self._fail(
            last or CannotConnectError("could not reconnect to the Live service", reason=reason)
        )

    async def _swap(self, conn: LiveConnection) -> int:
        """Make ``conn`` current: replay unacknowledged messages, retire the old connection."""
        async with self._send_lock:
            old, old_reader = self._conn, self._reader
            self._gen += 1
            gen = self._gen
            self._conn = conn
            self._in_turn = False
            replayed = 0
            try:
                for entry in self._log:
                    await conn.send_text(entry.frame)
                    entry.gen, entry.index = gen, conn.sent_count - 1
                    replayed += 1
            except LiveError as err:  # the reader sees the same failure and reconnects
                _LOGGER.debug("Replay interrupted: %s", err)
            self._reader = asyncio.get_running_loop().create_task(
                self._read(conn, gen), name="gemini_live_reader"
            )
        if old is not None:
            with contextlib.suppress(Exception):
                await old.close()
        if old_reader is not None and old_reader is not asyncio.current_task():
            old_reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await old_reader
        if replayed:
            _LOGGER.debug("Replayed %d client messages on the new connection", replayed)
        return replayed
