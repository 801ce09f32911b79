"""Scale benchmark: N concurrent real-time voice sessions, our Live client vs the google-genai SDK.

``python -m benchmarks.bench_scale [--sessions 1,10,50,100,150,200] [--duration 12] [--repeat 1]``
(``scripts/bench scale``). Prints one table per sweep, then ``max_sessions=N`` and
``cpu_ratio_vs_sdk=R``.

Set-up: the load generator (``devtools.loadgen``: the real Live wire protocol over real sockets,
pre-encoded paced replies) runs in its own process pinned to one core (``--server-cpu``); each
(client, N) run is a fresh client process pinned to another (``--client-cpu``), so its CPU
time is the client's alone. In the same sweep, for every N: our client (``LiveClient``), then
the SDK (``client.aio.live.connect``), against the same generator.

Each session is a voice conversation as the integration has it: a spoken request
(``tests/fixtures/speech/turn_on_kitchen_light.wav``) streamed in real time as 20 ms chunks
(through ``live.pcm.Resampler`` at 16 kHz, as stt.py feeds the mic), then silence until the
reply starts (the service's VAD ends the utterance after 500 ms of silence), the reply's audio
resampled 24 kHz -> 22.05 kHz chunk by chunk (``live.pcm.Resampler``, as tts.py does for a
Wyoming satellite), then after ``--gap`` the next request. ``--mic continuous`` keeps the
microphone streaming (silence) during the reply too. Session starts are spread over the first
``--stagger`` seconds; the window starts after ``--warmup``. All sessions' microphones are
paced by one 20 ms ticker (one wake-up per tick for the whole client, the same for both
clients: the harness costs as little as it can).

Per N and client:

* ``underruns``: reply chunks that arrived more than 100 ms later than the previous chunk's
  arrival plus its duration (a playback gap);
* ``eos``: end of speech (the scheduled time of the last voiced mic chunk) -> first reply
  chunk received, p50/p95, raw (it contains the 500 ms VAD window) and over the window;
* ``cpu``: the client process's CPU time / (N x window seconds), in ms per session-second;
  ``core``: the same as a fraction of the client's core;
* ``lag``: the client's 20 ms ticker lateness, p99 / max;
* the generator's figures over the same window: CPU (fraction of its core), loop lag p99/max,
  paced frames later than 20 ms (``late``): if these stay low, the generator was not the limit.

``max_sessions``: per client, the largest N such that every N up to it had 0 underruns, no
missed turn, and p95 eos <= 2x the N=1 p95. ``cpu_ratio_vs_sdk``: ours / SDK CPU per
session-second at the largest N both sustain (same sweep).

The third client, ``raw``, is a minimal one (websockets' sans-I/O protocol, pre-encoded audio
messages, reply audio neither decoded nor resampled): ``cpu_floor_vs_sdk`` is its CPU over the
SDK's at the same N, the share of the SDK's cost that any client pays for the harness, the
syscalls and the websocket framing. ``--clients raw --sessions 100,200,400`` measures the
generator's own limit.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Sequence
import contextlib
from dataclasses import dataclass, field
import json
import math
import os
from pathlib import Path
import statistics
import subprocess
import sys
import time
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPEECH_WAV = ROOT / "tests" / "fixtures" / "speech" / "turn_on_kitchen_light.wav"
CHUNK_S = 0.020
CHUNK_BYTES = 640  # 20 ms of 16 kHz PCM16
MIC_RATE = 16000
SATELLITE_RATE = 22050  # Wyoming's preferred rate: what tts.py resamples to
VAD_SILENCE_MS = 500  # the generator's end-of-speech window (no silenceDurationMs in the setup)
UNDERRUN_S = 0.100
API_KEY = "bench-key"
MODEL = "gemini-3.8-live"
SYSTEM_PROMPT = "You are a voice assistant in a home. Answer briefly."


def _quiet_high_bytes() -> bytes:
    return b"\x00\xff"


def is_loud(pcm: bytes) -> bool:
    """The generator's VAD test: some sample with |x| >= 256 (its high byte not 0x00/0xFF)."""
    return bool(pcm[1::2].translate(None, _quiet_high_bytes()))


def load_speech() -> tuple[list[bytes], int]:
    """The request as 20 ms chunks, and the index of its last voiced chunk."""
    import wave

    with wave.open(str(SPEECH_WAV), "rb") as wav:
        pcm = wav.readframes(wav.getnframes())
    chunks = [pcm[i : i + CHUNK_BYTES] for i in range(0, len(pcm), CHUNK_BYTES)]
    chunks[-1] = chunks[-1].ljust(CHUNK_BYTES, b"\0")
    last = max(i for i, c in enumerate(chunks) if is_loud(c))
    return chunks, last


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (inclusive method); nan when empty."""
    if not values:
        return math.nan
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


# ================================================================================================
# The client side (one process per client kind and N)
# ================================================================================================


@dataclass
class Turn:
    """One request and its reply, as the harness saw them (loop.time() seconds)."""

    eos_at: float = 0.0
    first_audio_at: float | None = None
    chunks: list[tuple[float, float]] = field(default_factory=list)  # (arrival, duration)
    ended_at: float | None = None


class Adapter:
    """What the harness needs from a client: connect, speak, listen, close."""

    on_audio: Callable[[bytes], None]
    on_turn_end: Callable[[], None]

    async def connect(self) -> None:
        raise NotImplementedError

    def begin_turn(self) -> None:
        """A new spoken request starts (the integration's ``begin_speech``)."""

    async def send(self, pcm: bytes) -> None:
        raise NotImplementedError

    async def receive_loop(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class OursAdapter(Adapter):
    """The project's ``LiveClient``, as the integration drives it."""

    def __init__(self, url: str) -> None:
        from custom_components.gemini_live.const import RECOMMENDED_AGENT_OPTIONS
        from custom_components.gemini_live.live.driver import LiveClient
        from custom_components.gemini_live.live.endpoint import Endpoint
        from custom_components.gemini_live.options import build_setup_config

        setup = build_setup_config(
            MODEL, RECOMMENDED_AGENT_OPTIONS, system_instruction=SYSTEM_PROMPT
        )
        self.client = LiveClient(Endpoint(api_key=API_KEY, base_url=url), setup)

    async def connect(self) -> None:
        await self.client.start()

    def begin_turn(self) -> None:
        self.client.begin_speech()

    async def send(self, pcm: bytes) -> None:
        await self.client.send_audio(pcm)

    async def receive_loop(self) -> None:
        from custom_components.gemini_live.live.messages import AudioOut
        from custom_components.gemini_live.live.protocol import SessionEnded, TurnEnded

        on_audio, on_turn_end = self.on_audio, self.on_turn_end
        async for event in self.client:
            kind = type(event)
            if kind is AudioOut:
                on_audio(event.data)  # type: ignore[union-attr]
            elif kind is TurnEnded:
                on_turn_end()
            elif kind is SessionEnded:
                return

    async def close(self) -> None:
        await self.client.close()


class SdkAdapter(Adapter):
    """google-genai's ``client.aio.live.connect`` session, configured like ours."""

    def __init__(self, url: str) -> None:
        import warnings

        from google import genai
        from google.genai import errors as genai_errors, live as genai_live, types

        warnings.simplefilter("ignore", genai_errors.ExperimentalWarning)
        original: Callable[..., Any] = getattr(genai_live, "ws_connect")  # noqa: B009
        if not getattr(original, "_bench_plain_ws", False):

            def plain(uri: str, *args: Any, **kwargs: Any) -> Any:
                kwargs.pop("ssl", None)  # the SDK always uses wss://: point it at ws://
                return original(uri.replace("wss://", "ws://", 1), *args, **kwargs)

            plain._bench_plain_ws = True  # type: ignore[attr-defined]
            setattr(genai_live, "ws_connect", plain)  # noqa: B010
        self.types = types
        self.genai = genai.Client(
            api_key=API_KEY, http_options={"base_url": url, "api_version": "v1beta"}
        )
        self.config = types.LiveConnectConfig(
            response_modalities=[types.Modality.AUDIO],
            speech_config=types.SpeechConfig(
                voice_config=types.VoiceConfig(
                    prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="Puck")
                )
            ),
            system_instruction=SYSTEM_PROMPT,
            input_audio_transcription=types.AudioTranscriptionConfig(),
            output_audio_transcription=types.AudioTranscriptionConfig(),
            session_resumption=types.SessionResumptionConfig(),
            context_window_compression=types.ContextWindowCompressionConfig(
                trigger_tokens=25600,
                sliding_window=types.SlidingWindow(target_tokens=12800),
            ),
        )
        self.stack = contextlib.AsyncExitStack()
        self.session: Any = None
        self.blob_mime = f"audio/pcm;rate={MIC_RATE}"

    async def connect(self) -> None:
        self.session = await self.stack.enter_async_context(
            self.genai.aio.live.connect(model=MODEL, config=self.config)
        )

    async def send(self, pcm: bytes) -> None:
        await self.session.send_realtime_input(
            audio=self.types.Blob(data=pcm, mime_type=self.blob_mime)
        )

    async def receive_loop(self) -> None:
        from websockets.exceptions import ConnectionClosed

        on_audio, on_turn_end = self.on_audio, self.on_turn_end
        with contextlib.suppress(ConnectionClosed):
            while True:
                async for msg in self.session.receive():
                    content = msg.server_content
                    if content is None:
                        continue
                    if content.model_turn is not None:
                        for part in content.model_turn.parts or ():
                            if part.inline_data is not None and part.inline_data.data:
                                on_audio(part.inline_data.data)
                    if content.turn_complete:
                        on_turn_end()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.stack.aclose()
        with contextlib.suppress(Exception):
            await self.genai.aio.aclose()


class RawAdapter(Adapter):
    """A minimal client to load the generator: websockets' sans-I/O protocol, cached messages.

    It sends the same JSON as our client (pre-encoded per mic chunk) and reads reply audio
    without decoding it (its duration from the base64 length).
    """

    cache: dict[bytes, bytes] = {}  # noqa: RUF012 - shared by all sessions of the process

    def __init__(self, url: str) -> None:
        self.url = url
        self.protocol: Any = None
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] | None = None

    async def connect(self) -> None:
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        loop = asyncio.get_running_loop()
        path = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
        uri = parse_uri(self.url.replace("http://", "ws://") + path)
        self.protocol = ClientProtocol(uri, max_size=16 * 1024 * 1024)
        self.ready = loop.create_future()
        self.closed = loop.create_future()
        adapter = self

        class _Proto(asyncio.Protocol):
            def data_received(self, data: bytes) -> None:
                adapter._data(data)

            def connection_lost(self, exc: Exception | None) -> None:
                if adapter.closed is not None and not adapter.closed.done():
                    adapter.closed.set_result(None)

        host, port = uri.host, uri.port
        transport, _ = await loop.create_connection(_Proto, host, port)
        self.transport = transport
        request = self.protocol.connect()
        request.headers["x-goog-api-key"] = API_KEY
        self.protocol.send_request(request)
        self._flush()
        await self.ready

    def _flush(self) -> None:
        assert self.transport is not None
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)
            else:
                self.transport.close()

    def _data(self, data: bytes) -> None:
        import orjson
        from websockets.frames import Frame
        from websockets.http11 import Response

        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                setup = {
                    "setup": {
                        "model": f"models/{MODEL}",
                        "generationConfig": {"responseModalities": ["AUDIO"]},
                        "inputAudioTranscription": {},
                        "outputAudioTranscription": {},
                        "sessionResumption": {},
                    }
                }
                self.protocol.send_text(orjson.dumps(setup))
            elif isinstance(event, Frame) and event.opcode.value in (1, 2):
                payload = bytes(event.data)
                if b'"setupComplete"' in payload[:40]:
                    assert self.ready is not None
                    self.ready.set_result(None)
                elif b'"inlineData"' in payload:
                    start = payload.index(b'"data": "') + 9
                    end = payload.index(b'"', start)
                    self.on_audio(bytes((end - start) * 3 // 4))  # its length, not its samples
                elif b'"turnComplete"' in payload:
                    self.on_turn_end()
        self._flush()

    async def send(self, pcm: bytes) -> None:
        message = self.cache.get(pcm)
        if message is None:
            from custom_components.gemini_live.live.messages import realtime_audio_frame

            message = self.cache[pcm] = realtime_audio_frame(pcm)
        self.protocol.send_text(message)
        self._flush()

    async def receive_loop(self) -> None:
        assert self.closed is not None
        await self.closed

    async def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.protocol.send_close(1000)
            self._flush()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    assert self.closed is not None
                    await self.closed
            self.transport.abort()


ADAPTERS: dict[str, Callable[[str], Adapter]] = {
    "ours": OursAdapter,
    "sdk": SdkAdapter,
    "raw": RawAdapter,
}


@dataclass
class Clock:
    """The shared mic ticker's position."""

    tick: int = 0


class Session:
    """One conversation: mic turns driven by the shared ticker, replies by the adapter."""

    def __init__(
        self,
        adapter: Adapter,
        speech: list[bytes],
        last_voiced: int,
        clock: Clock,
        *,
        continuous: bool,
    ) -> None:
        from custom_components.gemini_live.live.pcm import Resampler

        self.adapter = adapter
        self.clock = clock
        self.speech = speech
        self.last_voiced = last_voiced
        self.continuous = continuous
        self.mic = Resampler(MIC_RATE, MIC_RATE)  # stt.py's (a passthrough at 16 kHz)
        self.speaker: Any = None
        self.resampler = Resampler
        self.loop = asyncio.get_running_loop()
        self.turns: list[Turn] = []
        self.turn: Turn | None = None
        self.index = 0  # the next mic chunk of the current turn
        self.speaking = False
        self.start_tick = 0
        self.gap_ticks = 0
        self.missed = 0
        self.max_silence_chunks = 500  # 10 s without an answer: give the turn up
        adapter.on_audio = self.on_audio
        adapter.on_turn_end = self.on_turn_end

    def mic_chunk(self, tick: int, due: float) -> bytes | None:
        """The mic chunk for this tick (None: the mic is off)."""
        if not self.speaking:
            if self.turn is not None or tick < self.start_tick:
                return None if not self.continuous else bytes(CHUNK_BYTES)
            self.speaking = True
            self.index = 0
            self.turn = Turn()
            self.speaker = self.resampler(24000, SATELLITE_RATE)  # tts.py: one per reply
            self.adapter.begin_turn()
        index = self.index
        self.index += 1
        if index < len(self.speech):
            if index == self.last_voiced:
                assert self.turn is not None
                self.turn.eos_at = due
            return self.mic.process(self.speech[index])
        if index - len(self.speech) > self.max_silence_chunks:
            self.missed += 1  # no answer: start over
            self.speaking = False
            self.turn = None
            self.start_tick = tick + 1
            return None
        return bytes(CHUNK_BYTES)

    def on_audio(self, pcm: bytes) -> None:
        now = self.loop.time()
        turn = self.turn
        if turn is None:
            return  # a late chunk of a given-up turn
        if self.speaker is not None:
            self.speaker.process(pcm)
        if turn.first_audio_at is None:
            turn.first_audio_at = now
            if not self.continuous:
                self.speaking = False  # stt.py stops feeding once the answer starts
        turn.chunks.append((now, len(pcm) / 48000))

    def on_turn_end(self) -> None:
        turn = self.turn
        if turn is None or turn.first_audio_at is None:
            return
        turn.ended_at = self.loop.time()
        self.turns.append(turn)
        self.turn = None
        self.speaking = False
        self.start_tick = self.clock.tick + self.gap_ticks


async def run_client(
    kind: str,
    n: int,
    url: str,
    *,
    duration: float,
    warmup: float,
    stagger: float,
    gap: float,
    continuous: bool,
    stats_addr: tuple[str, int] | None,
    profile: str | None = None,
) -> dict[str, Any]:
    """Run N sessions of one client kind; return the window's figures.

    ``profile``: write a cProfile of the window (the client's work only) to this file.
    """
    from devtools.loadgen import fetch_stats, summarize

    loop = asyncio.get_running_loop()
    speech, last_voiced = load_speech()
    clock = Clock()
    sessions = [
        Session(ADAPTERS[kind](url), speech, last_voiced, clock, continuous=continuous)
        for _ in range(n)
    ]
    errors: list[str] = []
    limit = asyncio.Semaphore(16)

    async def connect(session: Session) -> None:
        async with limit:
            try:
                await session.adapter.connect()
            except Exception as err:
                errors.append(f"connect: {err!r}")

    await asyncio.gather(*(connect(s) for s in sessions))
    receivers = [loop.create_task(s.adapter.receive_loop()) for s in sessions]
    tick = 0
    t0 = loop.time() + 0.05
    stagger_ticks = max(1, round(stagger / CHUNK_S))
    for i, session in enumerate(sessions):
        session.start_tick = i * stagger_ticks // n
        session.gap_ticks = round(gap / CHUNK_S)
    lags: list[float] = []
    window = (t0 + warmup, t0 + warmup + duration)
    marks: dict[str, Any] = {}

    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()

    async def mark(at: float, name: str) -> None:
        await asyncio.sleep(max(0.0, at - loop.time()))
        if profiler is not None and profile is not None and name == "end":
            profiler.disable()
            profiler.dump_stats(profile)
        if stats_addr is not None:
            marks[f"{name}_loadgen"] = await fetch_stats(*stats_addr)
        marks[name] = (loop.time(), time.process_time())
        if profiler is not None and name == "start":
            profiler.enable()

    markers = [loop.create_task(mark(window[0], "start")), loop.create_task(mark(window[1], "end"))]
    while loop.time() < window[1] + 0.05:
        due = t0 + tick * CHUNK_S
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        now = loop.time()
        if window[0] <= due <= window[1]:
            lags.append(now - due)
        for session in sessions:
            chunk = session.mic_chunk(tick, due)
            if chunk is not None:
                try:
                    await session.adapter.send(chunk)
                except Exception as err:
                    errors.append(f"send: {err!r}")
                    session.speaking = False
                    session.turn = Turn()  # never ends: the mic stays off
        tick += 1
        clock.tick = tick
    await asyncio.gather(*markers)
    for session in sessions:
        with contextlib.suppress(Exception):
            await session.adapter.close()
    for task in receivers:
        task.cancel()
    await asyncio.gather(*receivers, return_exceptions=True)

    (w0, cpu0), (w1, cpu1) = marks["start"], marks["end"]
    latencies: list[float] = []
    underruns = 0
    chunks = 0
    max_gap = 0.0
    turns = 0
    for session in sessions:
        for turn in session.turns:
            if w0 <= turn.eos_at <= w1 and turn.first_audio_at is not None:
                turns += 1
                latencies.append((turn.first_audio_at - turn.eos_at) * 1000)
            for (prev_at, prev_dur), (at, _dur) in zip(turn.chunks, turn.chunks[1:], strict=False):
                if not w0 <= at <= w1:
                    continue
                gap_s = at - prev_at - prev_dur
                max_gap = max(max_gap, gap_s)
                if gap_s > UNDERRUN_S:
                    underruns += 1
            chunks += sum(1 for at, _ in turn.chunks if w0 <= at <= w1)
    window_s = w1 - w0
    cpu = cpu1 - cpu0
    result: dict[str, Any] = {
        "kind": kind,
        "n": n,
        "connected": n - sum(1 for e in errors if e.startswith("connect")),
        "errors": errors[:5],
        "window_s": window_s,
        "cpu_s": cpu,
        "cpu_ms_per_session_s": cpu / (n * window_s) * 1000,
        "core": cpu / window_s,
        "turns": turns,
        "missed": sum(s.missed for s in sessions),
        "chunks": chunks,
        "underruns": underruns,
        "max_gap_ms": max_gap * 1000,
        "eos_p50": pct(latencies, 50),
        "eos_p95": pct(latencies, 95),
        "eos_max": max(latencies, default=math.nan),
        "lag_p99_ms": pct(lags, 99) * 1000,
        "lag_max_ms": max(lags, default=0.0) * 1000,
        "loadavg": os.getloadavg(),
    }
    if stats_addr is not None:
        result["loadgen"] = summarize(marks["start_loadgen"], marks["end_loadgen"])
    return result


# ================================================================================================
# The orchestrator
# ================================================================================================


@dataclass
class Options:
    """The sweep's parameters."""

    sessions: list[int]
    clients: list[str]
    duration: float
    min_turns: int
    warmup: float
    stagger: float
    gap: float
    mic: str
    repeat: int
    client_cpu: int
    server_cpu: int
    workers: int


def _python() -> str:
    return sys.executable


def start_loadgen(opts: Options) -> tuple[subprocess.Popen[str], int]:
    """Start ``python -m devtools.loadgen`` pinned to the server core; return it and its port."""
    count = os.cpu_count() or 1
    cpus = ",".join(str((opts.server_cpu + w) % count) for w in range(opts.workers))
    proc = subprocess.Popen(
        [
            _python(),
            "-m",
            "devtools.loadgen",
            "--workers",
            str(opts.workers),
            "--cpus",
            cpus,
            "--silence-ms",
            str(VAD_SILENCE_MS),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError("the load generator did not start")
    return proc, int(json.loads(line)["port"])


def run_one(opts: Options, kind: str, n: int, port: int) -> dict[str, Any]:
    """One client process: ``kind`` with ``n`` sessions."""
    duration = opts.duration
    if n < opts.min_turns:  # enough turns for a p95 (a cycle is ~5 s)
        duration = max(duration, opts.min_turns * 5.0 / n)
    cmd = [
        _python(),
        "-m",
        "benchmarks.bench_scale",
        "--role",
        "client",
        "--kind",
        kind,
        "--n",
        str(n),
        "--port",
        str(port),
        "--duration",
        str(duration),
        "--warmup",
        str(opts.warmup),
        "--stagger",
        str(opts.stagger),
        "--gap",
        str(opts.gap),
        "--mic",
        opts.mic,
        "--client-cpu",
        str(opts.client_cpu),
    ]
    out = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=duration + 300, check=False
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"kind": kind, "n": n, "failed": (out.stderr or out.stdout)[-800:]}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _fmt(value: float, digits: int = 0) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:.{digits}f}")
    )


def row(result: dict[str, Any]) -> str:
    """One printed line of the table."""
    if "failed" in result:
        return f"{result['n']:>5} {result['kind']:<5} FAILED: {result['failed'].strip()[-200:]}"
    lg = result.get("loadgen", {})
    return (
        f"{result['n']:>5} {result['kind']:<5} {result['connected']:>5} {result['turns']:>5} "
        f"{result['missed']:>4} {result['underruns']:>4} {_fmt(result['max_gap_ms']):>6} "
        f"{_fmt(result['eos_p50']):>6} {_fmt(result['eos_p95']):>6} "
        f"{_fmt(result['eos_p50'] - VAD_SILENCE_MS):>5} "
        f"{_fmt(result['eos_p95'] - VAD_SILENCE_MS):>5} "
        f"{result['cpu_ms_per_session_s']:>7.3f} {result['core'] * 100:>5.1f}% "
        f"{_fmt(result['lag_p99_ms'], 1):>5} {_fmt(result['lag_max_ms']):>5} | "
        f"{lg.get('cpu', 0) * 100:>5.1f}% {_fmt(lg.get('p99_lag_ms', math.nan)):>4}/"
        f"{_fmt(lg.get('max_lag_ms', math.nan)):<4} {int(lg.get('late_frames', 0)):>4} "
        f"{int(lg.get('protocol_errors', 0)):>3}"
    )


HEADER = (
    "    N client conn turns miss undr maxgap  eos50  eos95  +v50  +v95 cpu_ms/s  core "
    "lag99 lagmx | lg_cpu lag99/max late err"
)


def sustains(result: dict[str, Any], base_p95: float) -> bool:
    """0 underruns, every session connected, no missed turn, p95 <= 2x the N=1 value."""
    return (
        "failed" not in result
        and result["connected"] == result["n"]
        and result["missed"] == 0
        and result["underruns"] == 0
        and result["turns"] > 0
        and result["eos_p95"] <= 2 * base_p95
    )


def verdict(results: list[dict[str, Any]], kinds: Sequence[str]) -> list[str]:
    """``max_sessions`` per client and ``cpu_ratio_vs_sdk`` for one sweep."""
    lines = []
    best: dict[str, int] = {}
    by: dict[str, dict[int, dict[str, Any]]] = {k: {} for k in kinds}
    for result in results:
        by[result["kind"]][result["n"]] = result
    for kind in kinds:
        runs = by[kind]
        base = runs.get(1)
        if base is None or "failed" in base:
            continue
        best[kind] = 0
        for n in sorted(runs):
            if not sustains(runs[n], base["eos_p95"]):
                break
            best[kind] = n
    for kind in kinds:
        if kind in best:
            lines.append(f"max_sessions[{kind}]={best[kind]}")
    if "ours" in best:
        lines.append(f"max_sessions={best['ours']}")
    if "ours" in best and "sdk" in best:
        both = [
            n
            for n in sorted(by["ours"])
            if n in by["sdk"] and n <= best["ours"] and n <= best["sdk"]
        ]
        ratios = {kind: _cpu_ratios(by, kind) for kind in ("ours", "raw") if kind in by}
        for kind, by_n in ratios.items():
            lines.append(
                f"{kind}/sdk cpu per session-second by N: "
                + ", ".join(f"N={n}: {r:.3f}" for n, r in by_n.items())
            )
        if both:
            at = both[-1]
            lines.append(f"cpu_ratio_vs_sdk={ratios['ours'][at]:.3f}  (at N={at})")
            if at in ratios.get("raw", {}):
                lines.append(
                    f"cpu_floor_vs_sdk={ratios['raw'][at]:.3f}  (at N={at}: the raw client, "
                    "pre-encoded mic frames, reply audio neither decoded nor resampled)"
                )
    return lines


def _cpu_ratios(by: dict[str, dict[int, dict[str, Any]]], kind: str) -> dict[int, float]:
    """``kind``'s CPU per session-second over the SDK's, per N both ran."""
    return {
        n: by[kind][n]["cpu_ms_per_session_s"] / by["sdk"][n]["cpu_ms_per_session_s"]
        for n in sorted(set(by[kind]) & set(by["sdk"]))
        if "failed" not in by[kind][n] and "failed" not in by["sdk"][n]
    }


def orchestrate(opts: Options) -> None:
    """Start the generator, run every (N, client) in turn, print the tables and verdicts."""
    proc, port = start_loadgen(opts)
    try:
        print(
            f"load generator: port {port}, {opts.workers} worker(s) on CPU {opts.server_cpu}; "
            f"clients on CPU {opts.client_cpu}; mic={opts.mic}; window {opts.duration:.0f} s "
            f"(>= {opts.min_turns} turns at small N), warmup {opts.warmup:.0f} s",
            flush=True,
        )
        for sweep in range(opts.repeat):
            la0 = os.getloadavg()
            print(f"\n== sweep {sweep + 1}/{opts.repeat} (load average {la0[0]:.2f})", flush=True)
            print(HEADER, flush=True)
            results = []
            for n in opts.sessions:
                for kind in opts.clients:
                    result = run_one(opts, kind, n, port)
                    results.append(result)
                    print(row(result), flush=True)
                    if "loadavg" in result:
                        print(f"      load average {result['loadavg'][0]:.2f}", flush=True)
            for line in verdict(results, opts.clients):
                print(line, flush=True)
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()


def client_main(args: argparse.Namespace) -> None:
    """``--role client``: run one client kind and print its figures as one JSON line."""
    os.sched_setaffinity(0, {args.client_cpu})
    if args.kind in ("ours", "sdk"):
        import homeassistant  # noqa: F401 - HA before google-genai (see benchmarks/__init__)
    result = asyncio.run(
        run_client(
            args.kind,
            args.n,
            f"http://127.0.0.1:{args.port}",
            duration=args.duration,
            warmup=args.warmup,
            stagger=args.stagger,
            gap=args.gap,
            continuous=args.mic == "continuous",
            stats_addr=("127.0.0.1", args.port),
            profile=args.profile,
        )
    )
    print(json.dumps(result), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments; orchestrate a sweep, or run one client (``--role client``)."""
    parser = argparse.ArgumentParser(description="Concurrent Live sessions: ours vs the SDK")
    parser.add_argument("--role", choices=("orchestrator", "client"), default="orchestrator")
    parser.add_argument("--sessions", default="1,10,50,100,150,200")
    parser.add_argument("--clients", default="ours,sdk,raw")
    parser.add_argument("--duration", type=float, default=12.0, help="window seconds")
    parser.add_argument("--min-turns", type=int, default=10, help="turns at least, at small N")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--stagger", type=float, default=4.0)
    parser.add_argument("--gap", type=float, default=0.5, help="after a reply, before the next")
    parser.add_argument("--mic", choices=("request", "continuous"), default="request")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    # client role
    parser.add_argument("--kind", default="ours")
    parser.add_argument("--n", type=int, default=1)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--profile", default=None, help="client role: cProfile the window")
    args = parser.parse_args(argv)
    if args.role == "client":
        client_main(args)
        return
    orchestrate(
        Options(
            sessions=[int(n) for n in args.sessions.split(",")],
            clients=args.clients.split(","),
            duration=args.duration,
            min_turns=args.min_turns,
            warmup=args.warmup,
            stagger=args.stagger,
            gap=args.gap,
            mic=args.mic,
            repeat=args.repeat,
            client_cpu=args.client_cpu,
            server_cpu=args.server_cpu,
            workers=args.workers,
        )
    )


if __name__ == "__main__":
    main()
