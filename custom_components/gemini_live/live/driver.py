"""The asyncio side of a Live session: websockets, timers and backoff around ``LiveProtocol``.

``LiveClient`` does only I/O. It opens a websocket when the protocol asks (``OpenConnection``),
feeds it every frame and failure, writes the frames the protocol produces, in order, and hands
every other event to its consumer (``receive`` / ``async for``); the last event is always
``SessionEnded``. It never decides anything about turns, replay or reconnects itself.

Transport: ``websockets``, opened with the caller's SSL context (Home Assistant passes its
preloaded one: creating a default context loads certificates from disk, which would block the
event loop) and a logger that never records the credential (websockets logs request headers at
DEBUG).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
import contextlib
import logging
import ssl
from typing import Any, Final, override

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import Close
from websockets.protocol import State

from .endpoint import Endpoint
from .errors import (
    AuthenticationError,
    CannotConnectError,
    ConnectionLostError,
    LiveError,
    SessionClosedError,
    SetupTimeoutError,
    error_from_close,
)
from .messages import INPUT_AUDIO_RATE, FunctionResult, SetupConfig
from .protocol import (
    DEFAULT_BACKOFF,
    CloseConnection,
    LiveProtocol,
    OpenConnection,
    ProtocolEvent,
    SessionEnded,
)

_LOGGER = logging.getLogger(__name__)

MAX_FRAME_BYTES: Final = 16 * 1024 * 1024
SETUP_TIMEOUT: Final = 15.0
_SECRET_HEADERS: Final = frozenset({"x-goog-api-key", "authorization"})


class _RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """websockets' logger: request headers that carry a credential are logged redacted."""

    @override
    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if msg == "> %s: %s" and args and str(args[0]).lower() in _SECRET_HEADERS:
            args = (args[0], "<redacted>")
        super().log(level, msg, *args, **kwargs)


WEBSOCKET_LOGGER: Final = _RedactingLogger(logging.getLogger(f"{__name__}.websocket"))


def _write_now(ws: ClientConnection, frame: bytes) -> bool:
    """Write one text frame without awaiting, when ``ws.send`` would not await either.

    ``ws.send`` costs about as much as everything else per microphone chunk (an async context
    manager, state checks, a drain). When the connection is open and the transport holds no
    unsent data, its work reduces to this: frame it (websockets' sans-I/O protocol) and hand the
    bytes to the transport. Otherwise (closing, or the socket not keeping up) return False: the
    caller uses ``ws.send``, which applies websockets' flow control and close handling.
    """
    if ws.protocol.state is not State.OPEN or ws.transport.get_write_buffer_size():
        return False
    ws.protocol.send_text(frame)
    for data in ws.protocol.data_to_send():
        ws.transport.write(data)
    return True


def _closed_error(err: ConnectionClosed) -> LiveError:
    sent: Close | None = err.sent
    if sent is not None and sent.code == 1009:
        return ConnectionLostError(
            "the Live server sent a frame larger than we accept", code=1009, reason=sent.reason
        )
    received: Close | None = err.rcvd
    if received is None:
        return ConnectionLostError("the Live connection dropped without a close frame", code=1006)
    return error_from_close(received.code, received.reason)


async def open_websocket(
    endpoint: Endpoint, version: str, ssl_context: ssl.SSLContext | None
) -> ClientConnection:
    """Open the service's websocket (no setup yet); failures become LiveErrors."""
    try:
        return await connect(
            endpoint.url(version),
            additional_headers=endpoint.headers(),
            ssl=ssl_context if endpoint.secure else None,
            max_size=MAX_FRAME_BYTES,
            open_timeout=None,  # the caller's setup timeout covers the whole opening
            ping_interval=20,
            ping_timeout=20,
            close_timeout=2,
            compression=None,
            user_agent_header="gemini-live-ha",
            logger=WEBSOCKET_LOGGER,
        )
    except InvalidStatus as err:
        status = err.response.status_code
        if status in (401, 403):
            raise AuthenticationError(
                f"Live service refused the credentials (HTTP {status})"
            ) from err
        raise CannotConnectError(f"Live service answered HTTP {status}") from err
    except (OSError, InvalidHandshake, InvalidURI, ValueError) as err:
        raise CannotConnectError(f"cannot connect to the Live service: {err}") from err


class LiveClient:
    """One logical Live session (across reconnects) over websockets."""

    def __init__(
        self,
        endpoint: Endpoint,
        setup: SetupConfig,
        *,
        ssl_context: ssl.SSLContext | None = None,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        replay_audio_s: float = 30.0,
        setup_timeout: float = SETUP_TIMEOUT,
    ) -> None:
        """Prepare a session; ``start`` connects. Raises UnsupportedOptionError early."""
        self.protocol = LiveProtocol(setup, backoff=backoff, replay_audio_s=replay_audio_s)
        self._endpoint = endpoint
        self._ssl = ssl_context
        self._setup_timeout = setup_timeout
        self._events: asyncio.Queue[ProtocolEvent] = asyncio.Queue()
        self._sockets: dict[int, ClientConnection] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._send_lock = asyncio.Lock()
        self._backlog: deque[tuple[int, bytes]] = deque()  # frames waiting for the socket
        self._ended = asyncio.Event()
        self._ready = asyncio.Event()  # a connection opened, or the session ended
        self.session_id: str | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def closed(self) -> bool:
        """Whether the session ended."""
        return self.protocol.closed

    async def start(self) -> None:
        """Open the first connection; raise its LiveError if it cannot be opened."""
        self.protocol.start()
        await self._process()
        await self._ready.wait()
        if (error := self.protocol.failure) is not None:
            await self._drain_tasks()
            raise error

    async def close(self) -> None:
        """Close the session: pending receives end with ``SessionEnded`` at once."""
        self.protocol.close()
        await self._process()
        await self._drain_tasks()

    async def _drain_tasks(self) -> None:
        tasks = [t for t in self._tasks.values() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def __aenter__(self) -> LiveClient:
        """Start on entry."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Close on exit."""
        await self.close()

    # ------------------------------------------------------------------ events

    async def receive(self) -> ProtocolEvent:
        """The next event; after ``SessionEnded`` the same one again."""
        if self._ended.is_set() and self._events.empty():
            raise self.protocol.failure or SessionClosedError("the Live session was closed")
        return await self._events.get()

    async def __aiter__(self) -> AsyncIterator[ProtocolEvent]:
        """Events up to and including ``SessionEnded``."""
        while True:
            event = await self._events.get()
            yield event
            if isinstance(event, SessionEnded):
                return

    # ------------------------------------------------------------------ I/O

    async def _process(self) -> None:
        """Carry out the protocol's instructions and write its frames, in order."""
        for event in self.protocol.events():
            match event:
                case OpenConnection():
                    self._tasks[event.gen] = asyncio.get_running_loop().create_task(
                        self._connection(event), name=f"gemini_live_connection_{event.gen}"
                    )
                case CloseConnection(gen=gen):
                    # The connection's own task closes its socket (see _connection).
                    self._sockets.pop(gen, None)
                    task = self._tasks.get(gen)
                    if task is not None and task is not asyncio.current_task():
                        task.cancel()
                case SessionEnded():
                    self._events.put_nowait(event)
                    self._ended.set()
                    self._ready.set()
                case _:
                    self._events.put_nowait(event)
        if not self.protocol.has_data_to_send and not self._backlog:
            return  # most received frames: nothing to write, no lock
        if not self._backlog and not self._send_lock.locked():
            # Most calls: every frame goes out at once, without an await, so without the lock.
            frames = self.protocol.data_to_send()
            for index, (gen, frame) in enumerate(frames):
                ws = self._sockets.get(gen)
                if ws is not None and not _write_now(ws, frame):
                    self._backlog.extend(frames[index:])
                    break
            if not self._backlog:
                return
        async with self._send_lock:
            # Taken under the lock: a caller cancelled while it waits leaves them to the next.
            self._backlog.extend(self.protocol.data_to_send())
            while self._backlog:
                gen, frame = self._backlog.popleft()
                ws = self._sockets.get(gen)
                if ws is None:
                    continue  # the protocol sends it again on the next connection
                try:  # noqa: SIM105 - per frame: cheaper than contextlib.suppress
                    await ws.send(frame, text=True)
                except ConnectionClosed:
                    pass  # the reader reports it

    async def _connection(self, request: OpenConnection) -> None:
        """Open connection ``request.gen``, read it until it ends, close its socket."""
        gen = request.gen
        ws: ClientConnection | None = None
        try:
            if request.delay:
                await asyncio.sleep(request.delay)
            async with asyncio.timeout(self._setup_timeout):
                ws = await open_websocket(self._endpoint, self.protocol.api_version, self._ssl)
                self._sockets[gen] = ws
                await ws.send(self.protocol.setup_frame(gen), text=True)
                while not self.protocol.is_open(gen) and gen in self._sockets:
                    await self._read(ws, gen)
            if self.protocol.active_gen == gen:
                self._ready.set()
            while gen in self._sockets:
                await self._read(ws, gen)
        except TimeoutError:
            self._lost(gen, SetupTimeoutError("the Live service did not complete the setup"))
            await self._process()
        except LiveError as err:
            self._lost(gen, err)
            await self._process()
        finally:
            if self._sockets.get(gen) is ws:
                self._sockets.pop(gen, None)
            if ws is not None:
                with contextlib.suppress(Exception):
                    await ws.close()
            self._tasks.pop(gen, None)

    async def _read(self, ws: ClientConnection, gen: int) -> None:
        try:
            frame = await ws.recv()
        except ConnectionClosed as err:
            raise _closed_error(err) from err
        self.protocol.receive(gen, frame)
        await self._process()

    def _lost(self, gen: int, error: LiveError) -> None:
        self._sockets.pop(gen, None)
        self.protocol.connection_lost(gen, error)

    # ------------------------------------------------------------------ intents

    async def flush(self) -> None:
        """Write what intents made directly on ``protocol`` produced."""
        await self._process()

    async def send_text(self, text: str) -> int:
        """A user text turn; returns its request id."""
        request = self.protocol.send_text(text)
        await self._process()
        return request

    async def send_realtime_text(self, text: str) -> int:
        """A user text as realtime input; returns its request id."""
        request = self.protocol.send_realtime_text(text)
        await self._process()
        return request

    def begin_speech(self) -> int:
        """A new spoken request (the audio from now on); returns its request id."""
        return self.protocol.begin_speech()

    async def send_audio(self, pcm: bytes, rate: int = INPUT_AUDIO_RATE) -> None:
        """Microphone audio (PCM16 mono)."""
        self.protocol.send_audio(pcm, rate)
        await self._process()

    async def send_video(self, image: bytes, mime_type: str = "image/jpeg") -> None:
        """One video frame / image."""
        self.protocol.send_video(image, mime_type)
        await self._process()

    async def activity_start(self) -> None:
        """Manual activity start of the spoken request."""
        self.protocol.activity_start()
        await self._process()

    async def activity_end(self) -> None:
        """Manual activity end."""
        self.protocol.activity_end()
        await self._process()

    async def audio_stream_end(self) -> None:
        """The microphone stream paused (automatic VAD)."""
        self.protocol.audio_stream_end()
        await self._process()

    async def note(self, text: str) -> None:
        """A user-role note that is not a request (interrupts any generation)."""
        self.protocol.note(text)
        await self._process()

    async def abandon(self, request: int) -> None:
        """The request's owner gave up on it."""
        self.protocol.abandon(request)
        await self._process()

    async def send_tool_results(self, results: Sequence[FunctionResult]) -> None:
        """Answer function calls (see LiveProtocol.send_tool_results)."""
        self.protocol.send_tool_results(results)
        await self._process()


async def check_connection(
    endpoint: Endpoint,
    setup: SetupConfig,
    *,
    ssl_context: ssl.SSLContext | None,
    within: float = 10.0,
) -> None:
    """Open a Live session with ``setup`` and close it: checks the credential and the model.

    Raises the LiveError the service answers with (InvalidEndpointError, AuthenticationError,
    ModelNotFoundError, QuotaExceededError, CannotConnectError...).
    """
    protocol = LiveProtocol(setup)
    try:
        async with asyncio.timeout(within):
            ws = await open_websocket(endpoint, protocol.api_version, ssl_context)
            try:
                protocol.start()
                gen = next(e.gen for e in protocol.events() if isinstance(e, OpenConnection))
                await ws.send(protocol.setup_frame(gen), text=True)
                while not protocol.is_open(gen):
                    try:
                        protocol.receive(gen, await ws.recv())
                    except ConnectionClosed as err:
                        raise _closed_error(err) from err
            finally:
                await ws.close()
    except TimeoutError as err:
        raise SetupTimeoutError("the Live service did not answer in time") from err
