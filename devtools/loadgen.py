"""A Live API load generator: hundreds of real-time voice sessions served from one core.

It speaks the real wire protocol over real sockets, like ``live_emulator`` (websocket handshake
on the service's paths, ``setup`` -> ``setupComplete``, ``realtimeInput`` audio in, the model's
reply out as pretty-printed JSON in binary frames, paced in real time), but answers every
request with one *scripted reply* through a fast path:

* **Pre-encoded frames.** The reply (synthetic speech from ``live_emulator.speech``, cut into
  200-240 ms chunks, each followed by the output transcription of the words it completes), the
  input transcription, the interim hypotheses and ``generationComplete`` are JSON-encoded *and
  websocket-framed* once at start-up; sending one is a single ``transport.write``. Only the
  per-turn frames whose content changes (``turnComplete`` + ``usageMetadata``,
  ``sessionResumptionUpdate``, ``voiceActivity``) are encoded when sent, once per turn.
* **No task per session.** Each connection is an ``asyncio.Protocol``; the websocket layer is
  ``websockets``' sans-I/O ``ServerProtocol`` (handshake, frame parsing and unmasking, ping/pong,
  closing handshake). Reply frames are paced with ``loop.call_at`` callbacks on an absolute
  schedule (chunk *k* is due at the reply's start + the audio before it), no coroutine wakes up.
* **Audio in at C speed.** An audio message costs ``orjson.loads``, a base64 decode and a peak
  test (a sample's high byte is neither 0x00 nor 0xFF, i.e. ``|x| >= 256``, -42 dBFS) for the
  voice activity detector, which runs on audio time: speech starts with a loud chunk and ends
  after ``silenceDurationMs`` (default 500 ms) of quiet audio, as the emulator's does.
* **The setup is checked by the emulator's own rules** (``live_emulator.schema.normalize``,
  ``models.resolve_model``, ``models.validate_setup``: the same 1007/1008 closes), once per
  connection; later messages are only checked for what the fast path reads.

It reports what would show that it, and not the client, is the limit (``/loadgen/stats``):
its event-loop lag (a 10 ms ticker's lateness), how late each paced frame left against its
due time ("late" = more than ``late_ms``), the largest transport write buffer (a client that
does not read), its CPU time, and counters. ``summarize(before, after)`` turns two snapshots
into the figures of a measurement window.

Several processes can serve one port (``--workers``, ``SO_REUSEPORT``; the kernel spreads the
connections); their statistics are published in shared memory and any worker answers
``/loadgen/stats`` with the sum.

Not modelled (use the emulator for these): tool calls, TEXT replies, faults, goAway and the
connection lifetime, ephemeral tokens, resumption state (a handle this generator issued is
accepted and starts a fresh conversation).

Run::

    python -m devtools.loadgen --port 8765 [--workers 2] [--cpus 1]
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
from bisect import bisect_left
from collections.abc import Callable, Sequence
import contextlib
import ctypes
from dataclasses import dataclass, field, replace
import json
import math
import multiprocessing
from multiprocessing.sharedctypes import RawArray
import os
import random
import re
import signal
import socket
import sys
import time
from typing import Any, Final
from urllib.parse import parse_qs

import orjson
from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from live_emulator import asr
from live_emulator.errors import BAD_API_KEY, INVALID_ARGUMENT, ProtocolError
from live_emulator.models import resolve_model, validate_setup
from live_emulator.schema import normalize
from live_emulator.session import pcm_rate, split_words
from live_emulator.speech import OUTPUT_MIME, OUTPUT_RATE, synthesize

WS_PATH: Final = re.compile(
    r"^/+ws/google\.ai\.generativelanguage\.(?P<version>v1alpha|v1beta|v1)"
    r"\.GenerativeService\.(?P<method>BidiGenerateContent|BidiGenerateContentConstrained)$"
)
STATS_PATH: Final = "/loadgen/stats"
HANDLE_PREFIX: Final = "LG"
MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
TICK_S: Final = 0.010
PUBLISH_EVERY: Final = 5  # ticks between publications to shared memory (multi-worker)
BUCKET_EDGES_MS: Final = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)
"""Histogram buckets (upper edges, ms) of loop lag and frame lateness; one more for above."""
MISSING_KEY: Final = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
_QUIET_HIGH_BYTES: Final = b"\x00\xff"
PROMPT_OVERHEAD_TOKENS: Final = 480
AUDIO_IN_TOKENS_PER_S: Final = 32
AUDIO_OUT_TOKENS_PER_S: Final = 25


@dataclass(frozen=True, slots=True)
class LoadGenConfig:
    """What the scripted reply is and how the server paces it.

    Attributes:
        reply_text: what the model "says" to every request (synthesized once).
        transcript: what every utterance "said" (the input transcription).
        voice: the voice the reply is synthesized with (the setup's voice is not used).
        seed: makes the synthetic speech and the chunk lengths deterministic.
        ms_per_char: synthetic speech duration per character of ``reply_text``.
        chunk_ms: the reply's audio chunk lengths are drawn from this range (10 ms steps);
            the real server's chunks are 200-240 ms.
        pace: 1.0 sends the reply in real time, 0 all at once.
        reply_delay_s: from the end of the request to the first reply frame.
        default_silence_ms: end-of-speech silence when the setup sets no silenceDurationMs.
        api_keys: accepted API keys; None accepts any non-empty key.
        interim_every_ms: one more word of the interim input transcription per this much speech.
        late_ms: a paced frame leaving more than this after its due time counts as late.
        variants: connection k gets reply variant ``k % variants``: the reply followed by
            ``variant * variant_step_ms`` of silence, so that whoever plays the reply can tell
            from its duration which connection served it (Home Assistant benchmarks).
        variant_step_ms: see ``variants``.
        log_replies: keep ``LoadGenerator.reply_log`` (when each reply's first frame left).

    """

    reply_text: str = "Sure, the kitchen light is on now."
    transcript: str = "Turn on the kitchen light."
    voice: str = "Puck"
    seed: int = 0
    ms_per_char: float = 55.0
    chunk_ms: tuple[int, int] = (200, 240)
    pace: float = 1.0
    reply_delay_s: float = 0.0
    default_silence_ms: int = 500
    api_keys: frozenset[str] | None = None
    interim_every_ms: int = 300
    late_ms: float = 20.0
    variants: int = 1
    variant_step_ms: int = 100
    log_replies: bool = False


@dataclass(frozen=True, slots=True)
class ReplyLog:
    """One reply: its connection (in order of opening), its variant, when its first frame left."""

    connection: int
    variant: int
    first_frame_at: float  # time.perf_counter()


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def encode_payload(msg: dict[str, Any]) -> bytes:
    """A server message as the real server writes it: pretty-printed JSON (as the emulator)."""
    return (json.dumps(msg, indent=2, ensure_ascii=False) + "\n").encode()


def wire_frame(payload: bytes) -> bytes:
    """The complete websocket frame (binary, unmasked: server to client) carrying ``payload``."""
    return Frame(Opcode.BINARY, payload).serialize(mask=False)


@dataclass(frozen=True, slots=True)
class Encoded:
    """A server message, encoded once: its JSON payload and its whole websocket frame."""

    payload: bytes
    wire: bytes

    @classmethod
    def of(cls, msg: dict[str, Any]) -> Encoded:
        """Encode ``msg``."""
        payload = encode_payload(msg)
        return cls(payload, wire_frame(payload))


@dataclass(frozen=True, slots=True)
class ReplyChunk:
    """One audio chunk of the scripted reply and the transcription that follows it."""

    offset_s: float  # due time from the reply's start (paced)
    audio_s: float  # audio duration of this chunk
    audio: Encoded
    transcript: Encoded | None


@dataclass(frozen=True, slots=True)
class InputFrames:
    """The frames describing what the user said (they depend on the transcription config)."""

    final: tuple[Encoded, ...]  # inputTranscription pieces, the last one ``finished``
    interim: tuple[Encoded, ...]  # interimInputTranscription with 1, 2, ... words


@dataclass(frozen=True, slots=True)
class ReplyScript:
    """Everything the fast path sends that can be encoded in advance."""

    chunks: tuple[ReplyChunk, ...]
    duration_s: float  # paced time from the first chunk to the end of the turn
    audio_s: float
    generation_complete: Encoded
    interrupted: Encoded
    transcript: str

    @classmethod
    def build(cls, config: LoadGenConfig, variant: int = 0) -> ReplyScript:
        """Synthesize and encode the scripted reply (``variant``: see LoadGenConfig)."""
        speech = synthesize(
            config.reply_text, voice=config.voice, seed=config.seed, ms_per_char=config.ms_per_char
        )
        if variant:
            pad = bytes(OUTPUT_RATE * variant * config.variant_step_ms // 1000 * 2)
            speech = replace(speech, pcm=speech.pcm + pad)
        low, high = config.chunk_ms
        rng = random.Random(f"{config.seed}:loadgen:chunks")
        chunks: list[ReplyChunk] = []
        offset = 0
        next_word = 0
        started = False
        while offset < len(speech.pcm):
            ms = rng.randrange(low, high + 1, 10) if high > low else low
            data = speech.pcm[offset : offset + max(2, OUTPUT_RATE * ms // 1000 * 2)]
            start_s = offset / 2 / OUTPUT_RATE
            offset += len(data)
            part = {"inlineData": {"mimeType": OUTPUT_MIME, "data": _b64(data)}}
            audio = Encoded.of({"serverContent": {"modelTurn": {"parts": [part]}}})
            words: list[str] = []
            while next_word < len(speech.words) and speech.word_starts[next_word] < offset // 2:
                words.append(speech.words[next_word])
                next_word += 1
            transcript = None
            if words:
                piece = (" " if started else "") + " ".join(words)
                started = True
                transcript = Encoded.of({"serverContent": {"outputTranscription": {"text": piece}}})
            chunks.append(
                ReplyChunk(start_s * config.pace, len(data) / 2 / OUTPUT_RATE, audio, transcript)
            )
        audio_s = len(speech.pcm) / 2 / OUTPUT_RATE
        return cls(
            chunks=tuple(chunks),
            duration_s=audio_s * config.pace,
            audio_s=audio_s,
            generation_complete=Encoded.of({"serverContent": {"generationComplete": True}}),
            interrupted=Encoded.of({"serverContent": {"interrupted": True}}),
            transcript=config.transcript,
        )

    def input_frames(self, transcription_config: dict[str, Any]) -> InputFrames:
        """The input transcription frames for a session's inputAudioTranscription config."""
        heard = asr.transcribe(self.transcript, transcription_config)
        pieces = split_words(heard, 2 if len(heard.split()) > 3 else 1)
        final = []
        for i, piece in enumerate(pieces):
            tr: dict[str, Any] = {"text": piece}
            if i == len(pieces) - 1:
                tr["finished"] = True
            final.append(Encoded.of({"serverContent": {"inputTranscription": tr}}))
        words = heard.split()
        interim = tuple(
            Encoded.of(
                {"serverContent": {"interimInputTranscription": {"text": " ".join(words[:n])}}}
            )
            for n in range(1, len(words) + 1)
        )
        return InputFrames(tuple(final), interim)


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _decode_b64(data: str) -> bytes:
    """Standard or URL-safe base64, padding optional (the SDK sends URL-safe)."""
    if "-" in data or "_" in data:
        data = data.replace("-", "+").replace("_", "/")
    if pad := len(data) % 4:
        data += "=" * (4 - pad)
    return binascii.a2b_base64(data, strict_mode=True)


def _format_duration(seconds: float) -> str:
    return f"{seconds:.3f}s"


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------

COUNTERS: Final = (
    "sessions_opened",
    "sessions_closed",
    "setup_errors",
    "protocol_errors",
    "frames_in",
    "frames_out",
    "bytes_in",
    "bytes_out",
    "audio_in_s",
    "utterances",
    "replies",
    "interrupts",
    "paced_frames",
    "late_frames",
    "ticks",
)
GAUGES: Final = ("sessions_open",)
MAXIMA: Final = ("max_lag_ms", "max_late_ms", "max_write_buffer")
_NB: Final = len(BUCKET_EDGES_MS) + 1
SLOT_LEN: Final = len(COUNTERS) + len(GAUGES) + len(MAXIMA) + 2 * _NB + 2  # + cpu_s, wall_s


@dataclass(slots=True)
class Stats:
    """One process's counters (cumulative since start: take deltas between two snapshots)."""

    counters: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0.0))
    sessions_open: int = 0
    max_lag_ms: float = 0.0
    max_late_ms: float = 0.0
    max_write_buffer: int = 0
    lag_hist: list[int] = field(default_factory=lambda: [0] * _NB)
    late_hist: list[int] = field(default_factory=lambda: [0] * _NB)

    def vector(self) -> list[float]:
        """The flat form published to shared memory (see ``SLOT_LEN``)."""
        return [
            *(self.counters[k] for k in COUNTERS),
            float(self.sessions_open),
            self.max_lag_ms,
            self.max_late_ms,
            float(self.max_write_buffer),
            *map(float, self.lag_hist),
            *map(float, self.late_hist),
            time.process_time(),
            time.monotonic(),
        ]


def snapshot_from_vectors(vectors: Sequence[Sequence[float]]) -> dict[str, Any]:
    """Aggregate the workers' published vectors into one JSON-able snapshot."""
    live = [v for v in vectors if v[-1] > 0]  # a worker that has published at least once
    out: dict[str, Any] = {"workers": len(live), "bucket_edges_ms": list(BUCKET_EDGES_MS)}
    i = 0
    for name in COUNTERS:
        out[name] = sum(v[i] for v in live)
        i += 1
    out["sessions_open"] = int(sum(v[i] for v in live))
    i += 1
    for name in MAXIMA:
        out[name] = max((v[i] for v in live), default=0.0)
        i += 1
    out["lag_hist"] = [int(sum(v[i + b] for v in live)) for b in range(_NB)]
    i += _NB
    out["late_hist"] = [int(sum(v[i + b] for v in live)) for b in range(_NB)]
    i += _NB
    out["cpu_s"] = sum(v[i] for v in live)
    out["wall_s"] = max((v[i + 1] for v in live), default=0.0)
    return out


def _hist_quantile(hist: Sequence[int], q: float) -> float:
    """Upper bucket edge (ms) below which a fraction ``q`` of the samples fall (inf: above)."""
    total = sum(hist)
    if total == 0:
        return 0.0
    seen = 0
    for index, count in enumerate(hist):
        seen += count
        if seen >= q * total:
            return BUCKET_EDGES_MS[index] if index < len(BUCKET_EDGES_MS) else math.inf
    return math.inf


def summarize(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The figures of the window between two ``/loadgen/stats`` snapshots.

    ``cpu`` is the generator's CPU time over the window as a fraction of one core (summed over
    workers); lag and lateness are given as histogram bucket edges (``p99_*``, ``max_*``: the
    bucket the 99th percentile / the worst sample fell in, in ms).
    """
    wall = after["wall_s"] - before["wall_s"]
    lag = [a - b for a, b in zip(after["lag_hist"], before["lag_hist"], strict=True)]
    late = [a - b for a, b in zip(after["late_hist"], before["late_hist"], strict=True)]
    return {
        "window_s": wall,
        "cpu": (after["cpu_s"] - before["cpu_s"]) / wall if wall > 0 else 0.0,
        "sessions_open": after["sessions_open"],
        "frames_in": after["frames_in"] - before["frames_in"],
        "frames_out": after["frames_out"] - before["frames_out"],
        "replies": after["replies"] - before["replies"],
        "paced_frames": after["paced_frames"] - before["paced_frames"],
        "late_frames": after["late_frames"] - before["late_frames"],
        "protocol_errors": after["protocol_errors"] - before["protocol_errors"],
        "p99_lag_ms": _hist_quantile(lag, 0.99),
        "max_lag_ms": _hist_quantile(lag, 1.0),
        "p99_late_ms": _hist_quantile(late, 0.99),
        "max_late_ms": _hist_quantile(late, 1.0),
        "max_write_buffer": after["max_write_buffer"],
    }


async def fetch_stats(host: str, port: int, within: float = 10.0) -> dict[str, Any]:
    """GET ``/loadgen/stats`` from a running load generator."""
    async with asyncio.timeout(within):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(
                f"GET {STATS_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            raw = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"load generator stats: {head[:80]!r}")
    stats: dict[str, Any] = orjson.loads(body)
    return stats


# --------------------------------------------------------------------------------------------
# One connection
# --------------------------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One Live connection: websocket via sans-I/O, the scripted turn engine via callbacks."""

    def __init__(self, server: LoadGenerator) -> None:
        self.server = server
        self.config = server.config
        self.stats = server.stats
        self.script = server.scripts[0]
        self.ordinal = -1  # in order of opening (this worker)
        self.variant = 0
        self.loop = server.loop
        self.ws = ServerProtocol(max_size=MAX_MESSAGE_BYTES)
        self.transport: asyncio.Transport | None = None
        self.record: list[tuple[str, bytes]] | None = [] if server.record else None
        self.opened = False  # the handshake succeeded (counted in sessions_open)
        self.ready = False  # setupComplete sent
        self.closing = False
        self.credential: str | None = None
        self.method = ""
        self.version = ""
        self.fragments: list[bytes | bytearray | memoryview] | None = None
        # from the setup
        self.out_transcription = False
        self.in_frames: InputFrames | None = None
        self.interim = False
        self.voice_activity = False
        self.interaction_status = False
        self.resumable = False
        self.vad = True
        self.interrupts = True
        self.silence_s = self.config.default_silence_ms / 1000
        # input audio
        self.mime: str | None = None
        self.rate = 16000
        self.audio_in_s = 0.0
        self.in_utterance = False
        self.quiet_s = 0.0
        self.utterance_s = 0.0
        self.interim_sent = 0
        self.history_chars = 0
        # the reply
        self.timer: asyncio.TimerHandle | None = None
        self.abort_timer: asyncio.TimerHandle | None = None
        self.replying = False
        self.reply_t0 = 0.0
        self.reply_index = 0
        self.queued = 0

    # ------------------------------------------------------------------ transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if type(event) is Frame:
                self._frame(event)
            elif isinstance(event, Request):
                self._request(event)
        self._flush()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self.abort_timer is not None:
            self.abort_timer.cancel()
        self.closing = True
        self.server.connections.discard(self)
        if self.record is not None and self.opened:
            self.server.records.append(self.record)
        if self.opened:
            self.stats.sessions_open -= 1
            self.stats.counters["sessions_closed"] += 1

    def _flush(self) -> None:
        """Write what the websocket protocol produced (handshake, pong, close); EOF closes."""
        transport = self.transport
        assert transport is not None
        for data in self.ws.data_to_send():
            if data:
                transport.write(data)
            else:
                transport.close()

    def _send(self, frame: Encoded) -> None:
        """Write a pre-encoded server message."""
        if self.closing or self.ws.state is not State.OPEN:
            return
        transport = self.transport
        assert transport is not None
        transport.write(frame.wire)
        counters = self.stats.counters
        counters["frames_out"] += 1
        counters["bytes_out"] += len(frame.wire)
        if self.record is not None:
            self.record.append(("server", frame.payload))

    def _send_msg(self, msg: dict[str, Any]) -> None:
        """Encode and write a server message (the per-turn ones)."""
        self._send(Encoded.of(msg))

    def _close(self, code: int, reason: str) -> None:
        """Close the websocket with ``code``/``reason`` as the real server does on errors."""
        if self.closing:
            return
        self.closing = True
        self._cancel_timer()
        if self.ws.state is State.OPEN:
            self.ws.send_close(code, reason)
            self._flush()
        transport = self.transport
        if transport is not None:
            # In case the client never answers the close.
            self.abort_timer = self.loop.call_later(2.0, transport.abort)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    # ------------------------------------------------------------------ handshake

    def _request(self, request: Request) -> None:
        path, _, query = request.path.partition("?")
        if path == STATS_PATH:
            body = orjson.dumps(self.server.snapshot())
            headers = Headers(
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                    ("Connection", "close"),
                ]
            )
            self.ws.send_response(Response(200, "OK", headers, body))
            return
        match = WS_PATH.match(path)
        if match is None:
            self.ws.send_response(self.ws.reject(404, "Not Found"))
            return
        self.version, self.method = match["version"], match["method"]
        if self.method == "BidiGenerateContent":
            key = request.headers.get("x-goog-api-key")
            if not key and query:
                key = (parse_qs(query).get("key") or [""])[0]
            self.credential = key or None
        response = self.ws.accept(request)
        self.ws.send_response(response)
        if response.status_code == 101:
            self.opened = True
            self.stats.sessions_open += 1
            self.ordinal = int(self.stats.counters["sessions_opened"])
            self.stats.counters["sessions_opened"] += 1
            self.variant = self.ordinal % len(self.server.scripts)
            self.script = self.server.scripts[self.variant]

    # ------------------------------------------------------------------ client messages

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if frame.fin:
                self._message(frame.data)
            else:
                self.fragments = [frame.data]
        elif opcode is Opcode.CONT and self.fragments is not None:
            self.fragments.append(frame.data)
            if frame.fin:
                data, self.fragments = b"".join(self.fragments), None
                self._message(data)
        # ping, pong and close are answered by the websocket protocol

    def _message(self, data: bytes | bytearray | memoryview) -> None:
        if self.closing:
            return
        counters = self.stats.counters
        counters["frames_in"] += 1
        counters["bytes_in"] += len(data)
        if self.record is not None:
            self.record.append(("client", bytes(data)))
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._protocol_error(1007, "Invalid JSON payload received. Unexpected token.")
            return
        if type(msg) is not dict:
            self._protocol_error(1007, "Invalid JSON payload received. Expected an object.")
            return
        try:
            if not self.ready:
                self._setup(msg)
            elif (ri := msg.get("realtimeInput", msg.get("realtime_input"))) is not None:
                if len(msg) != 1:
                    raise ProtocolError(1007, INVALID_ARGUMENT)
                self._realtime(ri)
            else:
                self._other(msg)
        except ProtocolError as err:
            self._protocol_error(err.code, err.reason)
        except AttributeError, TypeError, KeyError, ValueError, binascii.Error:
            self._protocol_error(1007, INVALID_ARGUMENT)

    def _protocol_error(self, code: int, reason: str) -> None:
        self.stats.counters["protocol_errors"] += 1
        self._close(code, reason)

    def _setup(self, msg: dict[str, Any]) -> None:
        if self.method != "BidiGenerateContent":
            raise ProtocolError(1007, "Auth token is not valid.")  # no ephemeral tokens here
        keys = self.config.api_keys
        if not self.credential:
            raise ProtocolError(1008, MISSING_KEY)
        if keys is not None and self.credential not in keys:
            raise ProtocolError(1007, BAD_API_KEY)
        try:
            normalized = normalize("ClientMessage", msg)
            if list(normalized) != ["setup"]:
                raise ProtocolError(1007, INVALID_ARGUMENT, "the first message must be a setup")
            setup: dict[str, Any] = normalized["setup"]
            spec = resolve_model(setup.get("model"), self.version)
            validate_setup(spec, setup, self.version)
            handle = setup.get("sessionResumption", {}).get("handle")
            if handle and not str(handle).startswith(HANDLE_PREFIX):
                raise ProtocolError(1007, INVALID_ARGUMENT, "unknown resumption handle")
            modalities = setup.get("generationConfig", {}).get("responseModalities", [])
            if "TEXT" in modalities:
                raise ProtocolError(1011, "the load generator replies with AUDIO only")
        except ProtocolError:
            self.stats.counters["setup_errors"] += 1
            raise
        self.out_transcription = "outputAudioTranscription" in setup
        if "inputAudioTranscription" in setup:
            self.in_frames = self.server.input_frames(setup["inputAudioTranscription"])
            self.interim = spec.interim_transcription
        self.voice_activity = spec.voice_activity
        self.interaction_status = spec.interaction_status
        self.resumable = "sessionResumption" in setup
        ric = setup.get("realtimeInputConfig", {})
        aad = ric.get("automaticActivityDetection", {})
        self.vad = not aad.get("disabled", False)
        if (silence := aad.get("silenceDurationMs")) is not None:
            self.silence_s = int(silence) / 1000
        self.interrupts = ric.get("activityHandling") != "NO_INTERRUPTION"
        system = setup.get("systemInstruction", {})
        self.history_chars = sum(len(p.get("text", "")) for p in system.get("parts", []))
        complete: dict[str, Any] = {}
        if spec.session_id:
            complete["sessionId"] = _session_id()
        self._send_msg({"setupComplete": complete})
        self.ready = True

    def _other(self, msg: dict[str, Any]) -> None:
        if len(msg) != 1:
            raise ProtocolError(1007, INVALID_ARGUMENT)
        ((key, body),) = msg.items()
        if key in ("clientContent", "client_content"):
            if self.replying:
                self._interrupt()  # any clientContent interrupts the generation
            if body.get("turnComplete", body.get("turn_complete")):
                self._request_reply()
        elif key in ("toolResponse", "tool_response"):
            pass  # the scripted reply calls no tools: nothing waits for a response
        elif key == "setup":
            raise ProtocolError(1007, INVALID_ARGUMENT, "setup sent twice")
        else:
            raise ProtocolError(
                1007, f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
            )

    def _realtime(self, ri: dict[str, Any]) -> None:
        audio = ri.get("audio")
        if audio is not None:
            self._audio(audio)
            if len(ri) == 1:
                return
        for blob in ri.get("mediaChunks", ri.get("media_chunks")) or ():
            if str(blob.get("mimeType", blob.get("mime_type", ""))).startswith("audio/"):
                self._audio(blob)
        if "activityStart" in ri or "activity_start" in ri:
            if self.vad:
                raise ProtocolError(1007, INVALID_ARGUMENT, "activityStart needs manual VAD")
            if not self.in_utterance:
                self._utterance_start()
        if "activityEnd" in ri or "activity_end" in ri:
            if self.vad:
                raise ProtocolError(1007, INVALID_ARGUMENT, "activityEnd needs manual VAD")
            if self.in_utterance:
                self._utterance_end()
        if ri.get("audioStreamEnd", ri.get("audio_stream_end")):
            if not self.vad:
                raise ProtocolError(1007, INVALID_ARGUMENT, "audioStreamEnd needs automatic VAD")
            if self.in_utterance:
                self._utterance_end()
        if (text := ri.get("text")) is not None:
            if self.replying and self.interrupts:
                self._interrupt()
            self.history_chars += len(str(text))
            self._request_reply()

    def _audio(self, blob: dict[str, Any]) -> None:
        mime = blob.get("mimeType") or blob.get("mime_type") or "audio/pcm"
        if mime != self.mime:
            rate = pcm_rate(str(mime))
            if self.mime is not None and rate != self.rate:
                raise ProtocolError(1007, f"Sample rate changed from {self.rate} to {rate}.")
            self.mime, self.rate = mime, rate
        pcm = _decode_b64(blob["data"])
        seconds = len(pcm) / (2 * self.rate)
        self.audio_in_s += seconds
        self.stats.counters["audio_in_s"] += seconds
        if not self.vad:
            if self.in_utterance:
                self._speech(seconds)
            return
        loud = bool(pcm[1::2].translate(None, _QUIET_HIGH_BYTES))
        if not self.in_utterance:
            if loud:
                self._utterance_start()
                self._speech(seconds)
            return
        if loud:
            self.quiet_s = 0.0
        else:
            self.quiet_s += seconds
            if self.quiet_s >= self.silence_s - 1e-9:
                self._utterance_end()
                return
        self._speech(seconds)

    def _speech(self, seconds: float) -> None:
        """Audio inside an utterance: the interim hypothesis grows with it."""
        self.utterance_s += seconds
        if self.interim and self.in_frames is not None:
            frames = self.in_frames.interim
            due = min(len(frames), 1 + int(self.utterance_s * 1000) // self.config.interim_every_ms)
            if due > self.interim_sent:
                self.interim_sent = due
                self._send(frames[due - 1])

    def _utterance_start(self) -> None:
        self.in_utterance = True
        self.quiet_s = 0.0
        self.utterance_s = 0.0
        self.interim_sent = 0
        self.stats.counters["utterances"] += 1
        if self.voice_activity and self.vad:
            self._voice_activity("ACTIVITY_START")
        if self.interim and self.in_frames is not None and self.in_frames.interim:
            self.interim_sent = 1
            self._send(self.in_frames.interim[0])
        if self.replying and self.interrupts:
            self._interrupt()

    def _utterance_end(self) -> None:
        self.in_utterance = False
        if self.voice_activity and self.vad:
            self._voice_activity("ACTIVITY_END")
        if self.in_frames is not None:
            for frame in self.in_frames.final:
                self._send(frame)
        self.history_chars += len(self.script.transcript)
        self._request_reply()

    def _voice_activity(self, kind: str) -> None:
        offset = _format_duration(self.audio_in_s)
        self._send_msg({"voiceActivity": {"type": kind, "audioOffset": offset}})

    # ------------------------------------------------------------------ the reply

    def _request_reply(self) -> None:
        if self.replying:
            self.queued += 1  # NO_INTERRUPTION: answered after the current reply
            return
        self.replying = True
        self.reply_index = 0
        self.reply_t0 = self.loop.time() + self.config.reply_delay_s
        if self.config.reply_delay_s > 0:
            self.timer = self.loop.call_at(self.reply_t0, self._reply_step)
        else:
            self._reply_step()

    def _reply_step(self) -> None:
        """Send every chunk that is due, then sleep until the next one (or the turn's end)."""
        self.timer = None
        if self.closing:
            return
        now = self.loop.time()
        chunks = self.script.chunks
        index = self.reply_index
        t0 = self.reply_t0
        if index == 0 and self.server.reply_log is not None and chunks and t0 <= now:
            self.server.reply_log.append(ReplyLog(self.ordinal, self.variant, time.perf_counter()))
        while index < len(chunks):
            chunk = chunks[index]
            due = t0 + chunk.offset_s
            if due > now:
                break
            self._paced(now - due)
            self._send(chunk.audio)
            if self.out_transcription and chunk.transcript is not None:
                self._send(chunk.transcript)
            index += 1
        self.reply_index = index
        if index < len(chunks):
            self.timer = self.loop.call_at(t0 + chunks[index].offset_s, self._reply_step)
            return
        end = t0 + self.script.duration_s
        if end > now:
            self.timer = self.loop.call_at(end, self._reply_end)
        else:
            self._reply_end()

    def _paced(self, late_s: float) -> None:
        """Account one paced send that left ``late_s`` after its due time."""
        stats = self.stats
        late_ms = late_s * 1000
        stats.counters["paced_frames"] += 1
        stats.late_hist[bisect_left(BUCKET_EDGES_MS, late_ms)] += 1
        if late_ms > self.config.late_ms:
            stats.counters["late_frames"] += 1
        stats.max_late_ms = max(stats.max_late_ms, late_ms)
        transport = self.transport
        if transport is not None:
            buffered = transport.get_write_buffer_size()
            stats.max_write_buffer = max(stats.max_write_buffer, buffered)

    def _reply_end(self) -> None:
        self.timer = None
        if self.closing:
            return
        self._paced(self.loop.time() - self.reply_t0 - self.script.duration_s)
        self._send(self.script.generation_complete)
        self._turn_complete(self.script.audio_s)
        self.stats.counters["replies"] += 1
        self.replying = False
        if self.queued:
            self.queued -= 1
            self._request_reply()

    def _interrupt(self) -> None:
        """The user spoke over the reply: stop it (interrupted, then turnComplete)."""
        self._cancel_timer()
        self.replying = False
        self.queued = 0
        self.stats.counters["interrupts"] += 1
        sent = self.script.chunks[: self.reply_index]
        self._send(self.script.interrupted)
        self._turn_complete(sum(c.audio_s for c in sent))

    def _turn_complete(self, audio_s: float) -> None:
        text_tokens = PROMPT_OVERHEAD_TOKENS + self.history_chars // 4
        audio_tokens = math.ceil(self.audio_in_s * AUDIO_IN_TOKENS_PER_S)
        response = math.ceil(audio_s * AUDIO_OUT_TOKENS_PER_S)
        prompt_details = [{"modality": "TEXT", "tokenCount": text_tokens}]
        if audio_tokens:
            prompt_details.append({"modality": "AUDIO", "tokenCount": audio_tokens})
        usage: dict[str, Any] = {
            "promptTokenCount": text_tokens + audio_tokens,
            "responseTokenCount": response,
            "totalTokenCount": text_tokens + audio_tokens + response,
            "promptTokensDetails": prompt_details,
        }
        if response:
            usage["responseTokensDetails"] = [{"modality": "AUDIO", "tokenCount": response}]
        content: dict[str, Any] = {"turnComplete": True}
        if self.interaction_status:
            content["interactionStatus"] = "IDLE"
        self._send_msg({"serverContent": content, "usageMetadata": usage})
        if self.resumable:
            handle = HANDLE_PREFIX + binascii.b2a_base64(os.urandom(33), newline=False).decode()
            handle = handle.replace("+", "-").replace("/", "_")
            self._send_msg({"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}})


def _session_id() -> str:
    raw = os.urandom(16).hex()
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:32]}"


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class LoadGenerator:
    """The load generator in this process (one worker). See the module docstring.

    Usage::

        async with LoadGenerator(LoadGenConfig()) as lg:
            ...  # connect to lg.ws_url (Endpoint base URL: lg.http_url)
    """

    def __init__(
        self,
        config: LoadGenConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        reuse_port: bool = False,
        record: bool = False,
        shared: Any = None,
        worker: int = 0,
    ) -> None:
        """Configure; nothing listens until :meth:`start`.

        ``record`` keeps every frame of every connection (tests): ``records`` lists, per
        closed connection, ``("client" | "server", JSON payload)`` in order. ``shared`` is the
        multi-worker statistics array (``worker`` is this process's slot).
        """
        self.config = config or LoadGenConfig()
        self.host = host
        self.port = port
        self._reuse_port = reuse_port
        self.record = record
        self.records: list[list[tuple[str, bytes]]] = []
        self.stats = Stats()
        self.connections: set[_Connection] = set()
        self._shared = shared
        self._worker = worker
        self._server: asyncio.Server | None = None
        self._tick_handle: asyncio.TimerHandle | None = None
        self._tick_due = 0.0
        self._input_frames: dict[str, InputFrames] = {}
        self.scripts: list[ReplyScript] = [
            ReplyScript.build(self.config, v) for v in range(max(1, self.config.variants))
        ]
        self.reply_log: list[ReplyLog] | None = [] if self.config.log_replies else None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop it serves on (once started)."""
        assert self._loop is not None, "LoadGenerator is not started"
        return self._loop

    @property
    def ws_url(self) -> str:
        """Base websocket URL, e.g. ``ws://127.0.0.1:PORT``."""
        return f"ws://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        """Base HTTP URL (an Endpoint's or the SDK's ``base_url``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def script(self) -> ReplyScript:
        """The scripted reply (variant 0)."""
        return self.scripts[0]

    def input_frames(self, transcription_config: dict[str, Any]) -> InputFrames:
        """The input transcription frames for a config (cached: sessions share them)."""
        key = orjson.dumps(transcription_config, option=orjson.OPT_SORT_KEYS).decode()
        frames = self._input_frames.get(key)
        if frames is None:
            frames = self._input_frames[key] = self.script.input_frames(transcription_config)
        return frames

    async def start(self) -> None:
        """Start listening and the lag ticker."""
        self._loop = asyncio.get_running_loop()
        self._server = await self.loop.create_server(
            lambda: _Connection(self),
            self.host,
            self.port,
            reuse_port=self._reuse_port or None,
            backlog=1024,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._tick_due = self.loop.time() + TICK_S
        self._tick_handle = self.loop.call_at(self._tick_due, self._tick)
        self.publish()

    async def stop(self) -> None:
        """Close every connection (1001) and stop listening."""
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn._close(1001, "Server is shutting down.")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3.0):
                while self.connections:  # noqa: ASYNC110 - closing handshakes in progress
                    await asyncio.sleep(0.01)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> LoadGenerator:
        """Start."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop."""
        await self.stop()

    def _tick(self) -> None:
        now = self.loop.time()
        lag_ms = (now - self._tick_due) * 1000
        stats = self.stats
        stats.counters["ticks"] += 1
        stats.lag_hist[bisect_left(BUCKET_EDGES_MS, lag_ms)] += 1
        stats.max_lag_ms = max(stats.max_lag_ms, lag_ms)
        self._tick_due += TICK_S
        if self._tick_due <= now:  # fell behind by more than a tick: resynchronise
            self._tick_due = now + TICK_S
        self._tick_handle = self.loop.call_at(self._tick_due, self._tick)
        if self._shared is not None and stats.counters["ticks"] % PUBLISH_EVERY == 0:
            self.publish()

    def publish(self) -> None:
        """Write this worker's statistics to its shared-memory slot (multi-worker)."""
        if self._shared is not None:
            base = self._worker * SLOT_LEN
            self._shared[base : base + SLOT_LEN] = self.stats.vector()

    def snapshot(self) -> dict[str, Any]:
        """Cumulative statistics of every worker (this one up to date, others <= 50 ms old)."""
        if self._shared is None:
            return snapshot_from_vectors([self.stats.vector()])
        self.publish()
        shared = self._shared
        workers = len(shared) // SLOT_LEN
        return snapshot_from_vectors(
            [list(shared[w * SLOT_LEN : (w + 1) * SLOT_LEN]) for w in range(workers)]
        )


# --------------------------------------------------------------------------------------------
# Command line (one process, or several workers behind one port)
# --------------------------------------------------------------------------------------------


def pin_to(cpus: Sequence[int]) -> None:
    """Pin this process to ``cpus`` (Linux)."""
    if cpus:
        os.sched_setaffinity(0, set(cpus))


async def _serve(
    config: LoadGenConfig,
    host: str,
    port: int,
    *,
    reuse_port: bool,
    shared: Any,
    worker: int,
    ready: Callable[[int], None],
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with LoadGenerator(
        config, host=host, port=port, reuse_port=reuse_port, shared=shared, worker=worker
    ) as lg:
        ready(lg.port)
        await stop.wait()


def _worker_main(
    *,
    config: LoadGenConfig,
    host: str,
    port: int,
    cpus: Sequence[int],
    shared: Any,
    worker: int,
    started: Any,
) -> None:
    pin_to(cpus)
    asyncio.run(
        _serve(
            config,
            host,
            port,
            reuse_port=True,
            shared=shared,
            worker=worker,
            ready=lambda _port: started.release(),
        )
    )


def serve(
    config: LoadGenConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    workers: int = 1,
    cpus: Sequence[int] = (),
    announce: Callable[[int], None] = lambda port: None,
) -> None:
    """Serve until SIGINT/SIGTERM: in this process, or ``workers`` processes on one port.

    Workers are pinned round-robin to ``cpus``; ``announce(port)`` runs once all listen.
    """
    if workers <= 1:
        pin_to(cpus)
        asyncio.run(
            _serve(config, host, port, reuse_port=False, shared=None, worker=0, ready=announce)
        )
        return
    # Reserve the port (SO_REUSEPORT, not listening) so every worker binds the same one.
    reserve = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reserve.bind((host, port))
    port = reserve.getsockname()[1]
    shared = RawArray(ctypes.c_double, workers * SLOT_LEN)
    context = multiprocessing.get_context("spawn")
    started = context.Semaphore(0)
    procs = [
        context.Process(
            target=_worker_main,
            kwargs={
                "config": config,
                "host": host,
                "port": port,
                "cpus": [cpus[w % len(cpus)]] if cpus else [],
                "shared": shared,
                "worker": w,
                "started": started,
            },
            name=f"loadgen-{w}",
        )
        for w in range(workers)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        started.acquire()
    reserve.close()
    announce(port)

    def forward(signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.is_alive():
                os.kill(proc.pid or 0, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for proc in procs:
        proc.join()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m devtools.loadgen``: serve until interrupted; prints ``{"port": N}`` once up."""
    defaults = LoadGenConfig()
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cpus", default="", help="comma-separated CPUs to pin workers to")
    parser.add_argument("--reply-text", default=defaults.reply_text)
    parser.add_argument("--transcript", default=defaults.transcript)
    parser.add_argument("--silence-ms", type=int, default=defaults.default_silence_ms)
    parser.add_argument("--pace", type=float, default=defaults.pace)
    parser.add_argument("--reply-delay", type=float, default=defaults.reply_delay_s)
    parser.add_argument("--late-ms", type=float, default=defaults.late_ms)
    args = parser.parse_args(argv)
    config = LoadGenConfig(
        reply_text=args.reply_text,
        transcript=args.transcript,
        default_silence_ms=args.silence_ms,
        pace=args.pace,
        reply_delay_s=args.reply_delay,
        late_ms=args.late_ms,
    )
    cpus = [int(c) for c in args.cpus.split(",") if c.strip()]

    def announce(port: int) -> None:
        print(json.dumps({"port": port, "pid": os.getpid(), "workers": args.workers}), flush=True)

    serve(config, args.host, args.port, workers=args.workers, cpus=cpus, announce=announce)
    sys.exit(0)


if __name__ == "__main__":
    main()
