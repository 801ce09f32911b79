"""A real Wyoming satellite peer for tests, benchmarks and demos (no Home Assistant imports).

Home Assistant's ``wyoming`` integration is a TCP *client*: it connects to a satellite,
asks ``describe``, and on the connection it keeps it sends ``run-satellite``. From then on
the satellite drives: it sends ``run-pipeline`` plus microphone audio, and Home Assistant
answers with ``transcribe``, ``transcript``, ``synthesize``, ``audio-start``,
``audio-chunk``... ``audio-stop`` (the reply) or ``error``. :class:`FakeSatellite` plays
the satellite side of that conversation on 127.0.0.1 and timestamps everything it receives
with :func:`time.perf_counter`, so a test or benchmark can measure what a user would hear.

Typical use::

    async with FakeSatellite(name="Kitchen satellite") as sat:
        ...  # add a wyoming config entry for 127.0.0.1:sat.port (see devtools.ha_voice)
        await sat.wait_connected()
        result = await sat.run_pipeline(pcm16k)
        assert result.ok, result.summary()

Every wait is bounded by a timeout; :meth:`FakeSatellite.stop` closes the server and awaits
every connection handler and microphone task, so nothing lingers after a test.
"""

from __future__ import annotations

import array
import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import dataclass, field
import logging
import time
from types import TracebackType
from typing import Any, Final, Self, override
import wave

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, Satellite
from wyoming.ping import Ping, Pong
from wyoming.pipeline import PipelineStage, RunPipeline
from wyoming.satellite import PauseSatellite, RunSatellite
from wyoming.server import AsyncEventHandler, AsyncTcpServer
from wyoming.snd import Played
from wyoming.tts import Synthesize
from wyoming.vad import VoiceStarted, VoiceStopped

_LOGGER = logging.getLogger(__name__)

MIC_RATE: Final = 16000
"""Microphone sample rate the satellite sends (what Home Assistant's pipeline expects)."""
MIC_WIDTH: Final = 2
"""Microphone sample width in bytes (signed 16-bit little endian)."""
MIC_CHANNELS: Final = 1
"""Microphone channel count."""

_STOP_TIMEOUT: Final = 5.0


def load_wav_pcm16k(path: str) -> bytes:
    """Return the PCM frames of a 16 kHz / 16-bit / mono WAV file (raises on another format)."""
    with wave.open(path, "rb") as wav:
        fmt = (wav.getframerate(), wav.getsampwidth(), wav.getnchannels())
        if fmt != (MIC_RATE, MIC_WIDTH, MIC_CHANNELS):
            raise ValueError(f"{path}: expected 16000 Hz / 16-bit / mono, got {fmt}")
        return wav.readframes(wav.getnframes())


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """One Wyoming event received from Home Assistant, stamped on arrival."""

    type: str
    data: dict[str, Any]
    payload: bytes | None
    at: float
    """``time.perf_counter()`` when the event was read from the socket."""


@dataclass(frozen=True, slots=True)
class AudioFormatInfo:
    """Format announced by an ``audio-start`` event."""

    rate: int
    width: int
    channels: int


@dataclass(frozen=True, slots=True)
class WyomingErrorInfo:
    """An ``error`` event sent by Home Assistant (a pipeline error)."""

    text: str
    code: str | None
    at: float


@dataclass
class RunResult:
    """Everything observed during one pipeline run, filled in live while the run lasts.

    All ``*_at`` fields are ``time.perf_counter()`` values (seconds), or ``None`` when the
    moment never happened.
    """

    started_at: float
    """When ``run-pipeline`` was sent."""
    expects_reply: bool = True
    """False when the run's end stage is not TTS (it then finishes at ``transcript``)."""
    events: list[ReceivedEvent] = field(default_factory=list)
    """Events attributed to this run, in arrival order."""
    transcribe_language: str | None = None
    transcript: str | None = None
    transcript_at: float | None = None
    synthesize_text: str | None = None
    audio_format: AudioFormatInfo | None = None
    """Format of the reply audio (from ``audio-start``)."""
    audio_start_at: float | None = None
    first_audio_at: float | None = None
    """First reply ``audio-chunk``."""
    audio_stop_at: float | None = None
    speech_end_sent_at: float | None = None
    """When the last non-silent microphone chunk was written."""
    mic_stopped_at: float | None = None
    mic_bytes_sent: int = 0
    mic_chunks_sent: int = 0
    errors: list[WyomingErrorInfo] = field(default_factory=list)
    played_sent: bool = False
    superseded: bool = False
    """A newer run started (barge-in) before this one finished."""
    disconnected: bool = False
    """The satellite connection closed before the run finished."""
    timed_out: bool = False
    finished_at: float | None = None
    _pcm: bytearray = field(default_factory=bytearray, repr=False)

    @property
    def reply_pcm(self) -> bytes:
        """Concatenated reply audio (format in :attr:`audio_format`)."""
        return bytes(self._pcm)

    @property
    def reply_seconds(self) -> float:
        """Duration of the reply audio received so far."""
        if self.audio_format is None:
            return 0.0
        fmt = self.audio_format
        return len(self._pcm) / (fmt.rate * fmt.width * fmt.channels)

    @property
    def event_types(self) -> list[str]:
        """Types of the attributed events, in order."""
        return [event.type for event in self.events]

    @property
    def speech_end_to_first_audio(self) -> float | None:
        """Seconds from the last voiced mic chunk to the first reply chunk (the felt latency)."""
        if self.speech_end_sent_at is None or self.first_audio_at is None:
            return None
        return self.first_audio_at - self.speech_end_sent_at

    @property
    def ok(self) -> bool:
        """True if the run got a transcript and (if expected) a complete reply, cleanly."""
        return (
            self.transcript is not None
            and (self.audio_stop_at is not None or not self.expects_reply)
            and not self.errors
            and not self.disconnected
            and not self.timed_out
        )

    def summary(self) -> str:
        """One line for assertion messages and logs."""
        latency = self.speech_end_to_first_audio
        return (
            f"transcript={self.transcript!r} reply={self.reply_seconds:.2f}s "
            f"latency={'-' if latency is None else f'{latency * 1000:.0f}ms'} "
            f"errors={[(e.code, e.text) for e in self.errors]} "
            f"disconnected={self.disconnected} timed_out={self.timed_out} "
            f"events={self.event_types_compact()}"
        )

    def event_types_compact(self) -> list[str]:
        """Event types with runs of ``audio-chunk`` collapsed (``audio-chunk x12``)."""
        out: list[str] = []
        count = 0
        for event_type in [*self.event_types, ""]:
            if event_type == AUDIO_CHUNK:
                count += 1
                continue
            if count:
                out.append(f"{AUDIO_CHUNK} x{count}")
                count = 0
            if event_type:
                out.append(event_type)
        return out


AUDIO_CHUNK: Final = "audio-chunk"
_AUDIO_TYPES: Final = frozenset({"audio-start", AUDIO_CHUNK, "audio-stop"})


@dataclass(frozen=True, slots=True)
class _RunOptions:
    pcm: bytes
    chunk_ms: int
    realtime: bool
    trailing_silence_ms: int
    start_stage: PipelineStage
    end_stage: PipelineStage
    send_audio_stop: bool
    max_stream_s: float
    silence_threshold: int
    run_timeout: float


class RunHandle:
    """A pipeline run in progress (see :meth:`FakeSatellite.start_run`).

    :attr:`result` is filled in live; :meth:`wait` returns it once the run has finished
    (``audio-stop``, ``error``, disconnect, or timeout).
    """

    def __init__(self, options: _RunOptions) -> None:
        """Prepare the run (the microphone task is attached by the satellite)."""
        self._options = options
        self.result = RunResult(
            started_at=time.perf_counter(),
            expects_reply=options.end_stage is PipelineStage.TTS,
        )
        self._done = asyncio.Event()
        self._transcript = asyncio.Event()
        self._first_audio = asyncio.Event()
        self._mic_task: asyncio.Task[None] | None = None
        self._next_audio_ts = 0

    @property
    def done(self) -> bool:
        """True once the run has finished."""
        return self._done.is_set()

    @property
    def expects_audio(self) -> bool:
        """True if the run ends with reply audio (end stage TTS)."""
        return self._options.end_stage is PipelineStage.TTS

    async def wait(self, within: float | None = None) -> RunResult:
        """Wait until the run finishes (default bound: the run's ``run_timeout``); never raises.

        On timeout the run is finished with ``timed_out=True`` and its microphone stopped.
        """
        try:
            async with asyncio.timeout(self._options.run_timeout if within is None else within):
                await self._done.wait()
        except TimeoutError:
            self.result.timed_out = True
            self._finish()
        await self._stop_mic()
        return self.result

    async def wait_transcript(self, within: float = 10.0) -> str | None:
        """Wait (bounded; raises TimeoutError) until ``transcript`` or the run's end."""
        async with asyncio.timeout(within):
            await _first_of(self._transcript, self._done)
        return self.result.transcript

    async def wait_first_audio(self, within: float = 10.0) -> None:
        """Wait (bounded; raises TimeoutError) until the first reply chunk or the run's end."""
        async with asyncio.timeout(within):
            await _first_of(self._first_audio, self._done)

    async def cancel(self) -> RunResult:
        """Stop the microphone and finish the run now (the result keeps what was received)."""
        self._finish()
        await self._stop_mic()
        return self.result

    # -- internals (called by FakeSatellite) ------------------------------------------------

    def _mic_should_stop(self) -> bool:
        return self.done or self.result.transcript is not None

    def _finish(self) -> None:
        if not self._done.is_set():
            self.result.finished_at = time.perf_counter()
            self._done.set()
        if self._mic_task is not None and not self._mic_task.done():
            self._mic_task.cancel()

    async def _stop_mic(self) -> None:
        task = self._mic_task
        if task is None or task.done():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({task}, timeout=_STOP_TIMEOUT)

    def _record(self, event: ReceivedEvent) -> None:
        self.result.events.append(event)


async def _first_of(*events: asyncio.Event) -> None:
    """Wait until any of the events is set (no task left behind)."""
    tasks = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _Handler(AsyncEventHandler):
    """One TCP connection from Home Assistant."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        satellite: FakeSatellite,
    ) -> None:
        super().__init__(reader, writer)
        self._satellite = satellite
        self.finished = asyncio.Event()
        self.task: asyncio.Task[Any] | None = None
        self.is_satellite = False

    @override
    async def run(self) -> None:
        self.task = asyncio.current_task()
        try:
            await super().run()
        except (ConnectionError, asyncio.IncompleteReadError) as err:
            _LOGGER.debug("Connection from Home Assistant dropped: %r", err)
        finally:
            self._satellite._handler_closed(self)
            self.finished.set()

    @override
    async def handle_event(self, event: Event) -> bool:
        await self._satellite._handle_event(self, event)
        return True

    async def close(self) -> None:
        """Close the connection and wait (bounded) for the handler to finish."""
        with contextlib.suppress(Exception):
            await self.stop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_STOP_TIMEOUT):
                await self.finished.wait()
                if self.task is not None and self.task is not asyncio.current_task():
                    await asyncio.wait({self.task})


class _TcpServer(AsyncTcpServer):
    """``AsyncTcpServer`` that reports the port it bound (for port 0)."""

    @property
    def bound_port(self) -> int:
        """The TCP port the server listens on."""
        server = self._server
        if not isinstance(server, asyncio.Server) or not server.sockets:
            raise RuntimeError("server is not started")
        port: int = server.sockets[0].getsockname()[1]
        return port

    def close(self) -> None:
        """Stop accepting connections."""
        if self._server is not None:
            self._server.close()

    async def wait_closed(self, within: float) -> None:
        """Wait (bounded) until the listener and its connections are closed."""
        server = self._server
        if server is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await server.wait_closed()


class FakeSatellite:
    """A Wyoming satellite on 127.0.0.1 that Home Assistant's wyoming integration connects to.

    - answers ``describe`` with a satellite :class:`~wyoming.info.Info` and ``ping`` with
      ``pong``, on every connection (HA's info coordinator opens short-lived ones);
    - treats the connection that sent ``run-satellite`` as *the* satellite connection;
    - answers every ``audio-stop`` from HA with ``played`` (the reply "finished playing");
    - runs pipelines: :meth:`run_pipeline` / :meth:`start_run`.
    """

    def __init__(
        self,
        name: str = "Fake satellite",
        *,
        area: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        version: str = "1.0.0",
        answer_played: bool = True,
    ) -> None:
        """Configure the satellite (call :meth:`start` or use ``async with``)."""
        self.name = name
        self.area = area
        self.host = host
        self.version = version
        self.answer_played = answer_played
        self._requested_port = port
        self._server: _TcpServer | None = None
        self._handlers: set[_Handler] = set()
        self._sat_handler: _Handler | None = None
        self._connected = asyncio.Event()
        self._runs: list[RunHandle] = []
        self.events: list[ReceivedEvent] = []
        """Every event received on satellite connections (all runs, pings excluded)."""
        self.unsolicited_audio: list[ReceivedEvent] = []
        """Audio events not belonging to a run (e.g. announcements)."""
        self.describe_count = 0
        self.connection_count = 0
        self.satellite_connection_count = 0
        """How many times HA sent ``run-satellite`` (1 + reconnects)."""
        self.pause_count = 0

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port Home Assistant must connect to."""
        if self._server is None:
            raise RuntimeError("FakeSatellite is not started")
        return self._server.bound_port

    @property
    def connected(self) -> bool:
        """True while a satellite connection (``run-satellite`` received) is open."""
        return self._sat_handler is not None

    def info(self) -> Info:
        """The ``info`` answer to ``describe``."""
        return Info(
            satellite=Satellite(
                name=self.name,
                attribution=Attribution(name="gemini-live devtools", url=""),
                installed=True,
                description="Fake Wyoming satellite (devtools.wyoming_satellite)",
                version=self.version,
                area=self.area,
            )
        )

    async def start(self) -> None:
        """Start listening."""
        if self._server is not None:
            raise RuntimeError("FakeSatellite already started")
        self._server = _TcpServer(self.host, self._requested_port)
        await self._server.start(self._make_handler)
        _LOGGER.debug("Fake satellite %r listening on %s:%s", self.name, self.host, self.port)

    async def stop(self) -> None:
        """Finish every run, close every connection and the listener, and await their tasks."""
        for run in list(self._runs):
            run._finish()
            await run._stop_mic()
        self._runs.clear()
        server = self._server
        if server is not None:
            server.close()  # stop accepting first
        for handler in list(self._handlers):
            await handler.close()
        self._handlers.clear()
        if server is not None:
            await server.wait_closed(_STOP_TIMEOUT)
        self._server = None

    async def __aenter__(self) -> Self:
        """Start the satellite."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the satellite."""
        await self.stop()

    async def wait_connected(self, within: float = 10.0) -> None:
        """Wait until Home Assistant has sent ``run-satellite`` (raises TimeoutError)."""
        try:
            async with asyncio.timeout(within):
                await self._connected.wait()
        except TimeoutError:
            raise TimeoutError(
                f"Home Assistant did not send run-satellite to {self.host}:{self.port} "
                f"within {within} s (connections so far: {self.connection_count})"
            ) from None

    async def disconnect(self) -> None:
        """Drop the satellite connection (a satellite going away); unfinished runs end.

        Home Assistant reconnects by itself after a few seconds.
        """
        handler = self._sat_handler
        if handler is not None:
            await handler.close()

    # -- runs ------------------------------------------------------------------------------------

    async def run_pipeline(
        self,
        pcm16k: bytes,
        *,
        chunk_ms: int = 20,
        realtime: bool = True,
        trailing_silence_ms: int = 0,
        start_stage: PipelineStage = PipelineStage.ASR,
        end_stage: PipelineStage = PipelineStage.TTS,
        send_audio_stop: bool = False,
        max_stream_s: float = 15.0,
        silence_threshold: int = 100,
        run_timeout: float = 30.0,
    ) -> RunResult:
        """Run one pipeline and return its result once finished (see :meth:`start_run`)."""
        handle = await self.start_run(
            pcm16k,
            chunk_ms=chunk_ms,
            realtime=realtime,
            trailing_silence_ms=trailing_silence_ms,
            start_stage=start_stage,
            end_stage=end_stage,
            send_audio_stop=send_audio_stop,
            max_stream_s=max_stream_s,
            silence_threshold=silence_threshold,
            run_timeout=run_timeout,
        )
        return await handle.wait()

    async def start_run(
        self,
        pcm16k: bytes,
        *,
        chunk_ms: int = 20,
        realtime: bool = True,
        trailing_silence_ms: int = 0,
        start_stage: PipelineStage = PipelineStage.ASR,
        end_stage: PipelineStage = PipelineStage.TTS,
        send_audio_stop: bool = False,
        max_stream_s: float = 15.0,
        silence_threshold: int = 100,
        run_timeout: float = 30.0,
    ) -> RunHandle:
        """Start a pipeline run and return at once; await :meth:`RunHandle.wait` later.

        Sends ``run-pipeline`` (``start_stage`` -> ``end_stage``, ``restart_on_end=False``),
        ``audio-start`` and then 16 kHz / 16-bit / mono ``audio-chunk`` events of ``chunk_ms``:
        ``pcm16k``, then ``trailing_silence_ms`` of silence, then - unless ``send_audio_stop``
        (which sends ``audio-stop`` instead, like a satellite with its own VAD) - more silence
        until HA sends ``transcript`` (HA stops reading the mic when its STT ends), the run
        ends, or ``max_stream_s`` passes. ``realtime`` paces chunks at the wall-clock rate;
        otherwise ``pcm16k`` and the trailing silence go as fast as possible and only the
        open-ended silence after them is paced. A run started while another still streams
        its microphone stops that stream (one mic per satellite) and marks it ``superseded``;
        the older run keeps collecting its reply audio (barge-in).

        ``run_timeout`` bounds :meth:`RunHandle.wait`; a run whose ``end_stage`` is not TTS
        finishes at ``transcript``.
        """
        if chunk_ms <= 0 or (MIC_RATE * chunk_ms) % 1000:
            raise ValueError("chunk_ms must be a positive whole number of samples at 16 kHz")
        if len(pcm16k) % MIC_WIDTH:
            raise ValueError("pcm16k must hold whole 16-bit samples")
        handler = self._sat_handler
        if handler is None:
            raise ConnectionError("no satellite connection (await wait_connected() first)")
        options = _RunOptions(
            pcm=pcm16k,
            chunk_ms=chunk_ms,
            realtime=realtime,
            trailing_silence_ms=trailing_silence_ms,
            start_stage=start_stage,
            end_stage=end_stage,
            send_audio_stop=send_audio_stop,
            max_stream_s=max_stream_s,
            silence_threshold=silence_threshold,
            run_timeout=run_timeout,
        )
        for older in self._runs:
            if older._mic_task is not None and not older._mic_task.done():
                older.result.superseded = True
                await older._stop_mic()
        handle = RunHandle(options)
        self._runs.append(handle)
        await self._write(
            handler,
            RunPipeline(start_stage=start_stage, end_stage=end_stage, restart_on_end=False).event(),
        )
        handle.result.started_at = time.perf_counter()
        handle._mic_task = asyncio.create_task(
            self._stream_mic(handle, handler), name="fake satellite microphone"
        )
        return handle

    # -- internals -------------------------------------------------------------------------------

    def _make_handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> _Handler:
        handler = _Handler(reader, writer, self)
        self._handlers.add(handler)
        self.connection_count += 1
        return handler

    def _handler_closed(self, handler: _Handler) -> None:
        self._handlers.discard(handler)
        if handler is self._sat_handler:
            self._sat_handler = None
            self._connected.clear()
            for run in self._runs:
                if not run.done:
                    run.result.disconnected = True
                    run._finish()
            self._runs = [run for run in self._runs if not run.done]

    async def _write(self, handler: _Handler, event: Event) -> None:
        await handler.write_event(event)

    async def _handle_event(self, handler: _Handler, event: Event) -> None:
        now = time.perf_counter()
        if Describe.is_type(event.type):
            self.describe_count += 1
            await self._write(handler, self.info().event())
            return
        if Ping.is_type(event.type):
            await self._write(handler, Pong(text=Ping.from_event(event).text).event())
            return
        if Pong.is_type(event.type):
            return
        if RunSatellite.is_type(event.type):
            if self._sat_handler is not None and self._sat_handler is not handler:
                _LOGGER.debug("A new satellite connection replaces the previous one")
            self._sat_handler = handler
            handler.is_satellite = True
            self.satellite_connection_count += 1
            self._connected.set()
            return
        if PauseSatellite.is_type(event.type):
            self.pause_count += 1
            return
        if not handler.is_satellite:
            _LOGGER.debug("Ignoring %s on a non-satellite connection", event.type)
            return
        received = ReceivedEvent(event.type, dict(event.data), event.payload, now)
        self.events.append(received)
        run = self._dispatch(received)
        if run is None and received.type in _AUDIO_TYPES:
            self.unsolicited_audio.append(received)
        if AudioStop.is_type(event.type):
            if self.answer_played:
                with contextlib.suppress(ConnectionError):
                    await self._write(handler, Played().event())
            if run is not None:
                run.result.played_sent = self.answer_played
                run._finish()
        self._runs = [run for run in self._runs if not run.done]

    def _oldest(self, predicate: Callable[[RunHandle], bool]) -> RunHandle | None:
        return next((run for run in self._runs if not run.done and predicate(run)), None)

    def _stream_owner(self, timestamp: object) -> RunHandle | None:
        """The run whose reply stream an ``audio-chunk``/``audio-stop`` continues.

        HA numbers each reply stream's ``timestamp`` from 0 in chunk milliseconds, so with
        two open streams (barge-in) the expected next timestamp tells them apart.
        """
        open_runs = [
            run
            for run in self._runs
            if not run.done
            and run.result.audio_start_at is not None
            and run.result.audio_stop_at is None
        ]
        for run in open_runs:
            if run._next_audio_ts == timestamp:
                return run
        return open_runs[0] if open_runs else None

    def _dispatch(self, received: ReceivedEvent) -> RunHandle | None:
        """Attribute an event to a run and update that run's result."""
        event_type = received.type
        event = Event(type=event_type, data=received.data, payload=received.payload)
        run: RunHandle | None
        if Transcribe.is_type(event_type):
            run = self._oldest(lambda r: r.result.transcribe_language is None)
            if run is not None:
                run.result.transcribe_language = Transcribe.from_event(event).language or ""
        elif VoiceStarted.is_type(event_type) or VoiceStopped.is_type(event_type):
            run = self._oldest(lambda r: r.result.transcript is None)
        elif Transcript.is_type(event_type):
            run = self._oldest(lambda r: r.result.transcript is None)
            if run is not None:
                run.result.transcript = Transcript.from_event(event).text
                run.result.transcript_at = received.at
                run._transcript.set()
                if not run.expects_audio:
                    run._record(received)
                    run._finish()
                    return run
        elif Synthesize.is_type(event_type):
            run = self._oldest(lambda r: r.result.synthesize_text is None)
            if run is not None:
                run.result.synthesize_text = Synthesize.from_event(event).text
        elif AudioStart.is_type(event_type):
            run = self._oldest(lambda r: r.expects_audio and r.result.audio_start_at is None)
            if run is not None:
                start = AudioStart.from_event(event)
                run.result.audio_format = AudioFormatInfo(start.rate, start.width, start.channels)
                run.result.audio_start_at = received.at
                run._next_audio_ts = start.timestamp or 0
        elif AudioChunk.is_type(event_type):
            run = self._stream_owner(received.data.get("timestamp"))
            if run is not None:
                chunk = AudioChunk.from_event(event)
                run.result._pcm.extend(chunk.audio)
                run._next_audio_ts = (chunk.timestamp or 0) + chunk.milliseconds
                if run.result.first_audio_at is None:
                    run.result.first_audio_at = received.at
                    run._first_audio.set()
        elif AudioStop.is_type(event_type):
            run = self._stream_owner(received.data.get("timestamp"))
            if run is not None:
                run.result.audio_stop_at = received.at
        elif Error.is_type(event_type):
            # A pipeline error belongs to a run still before its reply, else to the newest.
            run = self._oldest(lambda r: r.result.audio_start_at is None)
            if run is None:
                run = next((r for r in reversed(self._runs) if not r.done), None)
            if run is not None:
                err = Error.from_event(event)
                run.result.errors.append(WyomingErrorInfo(err.text, err.code, received.at))
                run._record(received)
                run._finish()
                return run
        else:
            run = None
        if run is not None:
            run._record(received)
        return run

    async def _stream_mic(self, handle: RunHandle, handler: _Handler) -> None:
        """Write the run's microphone audio until its transcript, end, or max_stream_s."""
        opts = handle._options
        result = handle.result
        chunk_bytes = MIC_RATE * MIC_WIDTH * MIC_CHANNELS * opts.chunk_ms // 1000
        chunk_s = opts.chunk_ms / 1000
        silence = bytes(chunk_bytes)
        audio = opts.pcm + bytes(MIC_RATE * MIC_WIDTH * opts.trailing_silence_ms // 1000)
        n_audio_chunks = -(-len(audio) // chunk_bytes)
        last_voiced = _last_voiced_chunk(opts.pcm, chunk_bytes, opts.silence_threshold)
        deadline = time.perf_counter() + opts.max_stream_s
        try:
            await self._write(
                handler,
                AudioStart(
                    rate=MIC_RATE, width=MIC_WIDTH, channels=MIC_CHANNELS, timestamp=0
                ).event(),
            )
            start = time.perf_counter()
            paced_from = start if opts.realtime else None
            paced_index = 0
            index = 0
            while not handle._mic_should_stop():
                now = time.perf_counter()
                if now >= deadline:
                    _LOGGER.debug("Microphone stopped after max_stream_s without a transcript")
                    break
                if index < n_audio_chunks:
                    chunk = audio[index * chunk_bytes : (index + 1) * chunk_bytes]
                    if len(chunk) < chunk_bytes:
                        chunk += bytes(chunk_bytes - len(chunk))
                elif opts.send_audio_stop:
                    await self._write(handler, AudioStop(timestamp=index * opts.chunk_ms).event())
                    break
                else:
                    chunk = silence
                    if paced_from is None:  # fast mode: pace only the open-ended silence
                        paced_from = now
                        paced_index = index
                if paced_from is not None:
                    delay = paced_from + (index - paced_index) * chunk_s - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if handle._mic_should_stop():
                        break
                elif index % 10 == 0:
                    await asyncio.sleep(0)  # let HA read in fast mode
                await self._write(
                    handler,
                    AudioChunk(
                        rate=MIC_RATE,
                        width=MIC_WIDTH,
                        channels=MIC_CHANNELS,
                        audio=chunk,
                        timestamp=index * opts.chunk_ms,
                    ).event(),
                )
                result.mic_bytes_sent += len(chunk)
                result.mic_chunks_sent += 1
                if index == last_voiced:
                    result.speech_end_sent_at = time.perf_counter()
                index += 1
        except (ConnectionError, RuntimeError) as err:
            _LOGGER.debug("Microphone stream ended: %r", err)
        finally:
            result.mic_stopped_at = time.perf_counter()


def _last_voiced_chunk(pcm: bytes, chunk_bytes: int, threshold: int) -> int | None:
    """Index of the last chunk holding a sample louder than ``threshold`` (None if silent)."""
    samples = array.array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    per_chunk = chunk_bytes // 2
    for index in range((len(samples) - 1) // per_chunk, -1, -1):
        part = samples[index * per_chunk : (index + 1) * per_chunk]
        if part and (max(part) > threshold or -min(part) > threshold):
            return index
    return None
