"""One Live API connection: setup, the client message reader and the model's turn engine."""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import copy
from dataclasses import dataclass, field
import hashlib
import json
import logging
import math
import random
import re
import time
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from . import asr, rules
from .errors import BAD_API_KEY, INTERNAL, INVALID_ARGUMENT, ProtocolError, SessionEnded
from .faults import Fault, frame_kinds
from .models import (
    DEFAULT_VOICE,
    ModelSpec,
    behavior_of,
    function_declarations,
    resolve_model,
    validate_setup,
)
from .records import (
    ConnectionRecord,
    FaultRecord,
    PendingCallState,
    ResumableState,
    ToolResponseRecord,
)
from .scenario import (
    AwaitResults,
    CodeExecution,
    Delay,
    EndTurn,
    ExecutableCode,
    GoAway,
    Grounding,
    Interrupted,
    Say,
    SayResult,
    ScenarioTurn,
    Step,
    Thought,
    ToolCall,
    UrlContext,
    VadSignal,
    VoiceActivitySignal,
)
from .schema import decode_bytes, normalize
from .speech import OUTPUT_MIME, OUTPUT_RATE, synthesize
from .vad import EnergyVad, VadEvent, VadSettings

if TYPE_CHECKING:
    from .hub import Hub

_LOGGER = logging.getLogger(__name__)

PROMPT_OVERHEAD_TOKENS = 480
AUDIO_IN_TOKENS_PER_S = 32
AUDIO_OUT_TOKENS_PER_S = 25
# Background reasoning per answered request on the extended-thinking model, by thinkingLevel.
THINKING_TOKENS = {"LOW": 64, "MEDIUM": 256, "HIGH": 1024}
DEFAULT_THINKING_LEVEL = "MEDIUM"
MISSING_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
SCHEDULINGS = ("SILENT", "WHEN_IDLE", "INTERRUPT")
# Setup fields only Vertex AI knows: the Gemini API's JSON parser rejects them as unknown names
# (google-genai refuses to send them in Gemini API mode). (path of the parent, field)
VERTEX_ONLY_FIELDS: tuple[tuple[tuple[str, ...], str], ...] = (
    ((), "explicitVadSignal"),
    (("sessionResumption",), "transparent"),
)


def format_duration(seconds: float) -> str:
    """Format seconds as a proto-JSON Duration string ("50s", "0.500s")."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    text = f"{seconds:.9f}".rstrip("0")
    frac = len(text.split(".")[1])
    digits = 3 if frac <= 3 else 6 if frac <= 6 else 9
    return f"{seconds:.{digits}f}s"


def pcm_rate(mime: str) -> int:
    """Return the sample rate declared by an audio mimeType (16 kHz when absent)."""
    base, _, params = mime.partition(";")
    if base.strip().lower() not in ("audio/pcm", "audio/l16"):
        raise ProtocolError(1007, INVALID_ARGUMENT, f"unsupported audio mimeType {mime}")
    match = re.search(r"rate\s*=\s*(\d+)", params)
    return int(match.group(1)) if match else 16000


def split_words(text: str, pieces: int) -> list[str]:
    """A transcription in ``pieces`` parts as the server sends it (spaces lead later parts)."""
    words = text.split(" ")
    pieces = max(1, min(pieces, len(words)))
    size = math.ceil(len(words) / pieces)
    out = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [(" " + p if i else p) for i, p in enumerate(out)]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


@dataclass
class _Result:
    """A function response as the model sees it."""

    response: Any
    named: bool
    scheduling: str | None = None


@dataclass
class _Job:
    kind: str  # "user" | "tool_result"
    text: str = ""
    scenario_turn: ScenarioTurn | None = None
    call: PendingCallState | None = None
    result: _Result | None = None


@dataclass
class _TurnState:
    text_chars: int = 0
    audio_s: float = 0.0
    thought_chars: int = 0
    thought_tokens: int = 0
    transcript_started: bool = False
    completed: bool = False
    waits: list[str] = field(default_factory=list)
    awaited: list[str] = field(default_factory=list)
    last_result: tuple[str, dict[str, Any], _Result] | None = None


@dataclass
class _ActiveFault:
    fault: Fault
    base_sent: int
    base_turn: int
    base_kinds: collections.Counter[str]
    fired: bool = False


class Session:
    """State machine of one websocket connection to the emulator."""

    def __init__(
        self,
        hub: Hub,
        request: web.Request,
        ws: web.WebSocketResponse,
        record: ConnectionRecord,
        credential: str | None,
    ) -> None:
        """Bind the session to its websocket and record."""
        self.hub = hub
        self.cfg = hub.config
        self.ws = ws
        self.record = record
        self._request = request
        self._transport = request.transport
        self._credential = credential
        self._send_lock = asyncio.Lock()
        self._closed = False
        self._close_started = False
        self._close_done = asyncio.Event()
        self._ready = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._driver: asyncio.Task[None] | None = None
        self._gen: asyncio.Task[None] | None = None
        self._jobs: collections.deque[_Job] = collections.deque()
        self._jobs_event = asyncio.Event()
        self._interrupting = False
        self._interrupt_cancels_calls = True
        self._history: list[dict[str, Any]] = []
        self._pending: dict[str, PendingCallState] = {}
        self._waiters: dict[str, asyncio.Future[_Result]] = {}
        self._awaited: dict[str, asyncio.Future[_Result]] = {}
        self._turn = _TurnState()
        self._faults: list[_ActiveFault] = []
        self._delay_s = 0.0
        self._sent_count = 0
        self._kind_counts: collections.Counter[str] = collections.Counter()
        self._turn_count = 0
        self._client_index = 0
        self._consumed_index = 0
        self._handle_count = 0
        self._call_rng = random.Random(f"{self.cfg.seed}:{record.index}:calls")
        self._chunk_rng = random.Random(f"{self.cfg.seed}:{record.index}:chunks")
        self._input_audio_s = 0.0
        self._sample_rate: int | None = None
        self._vad: EnergyVad | None = None
        self._activity_open = False
        self._in_utterance = False
        self._utterance_start_ms = 0
        self._utterance_audio_ms = 0.0
        self._interim_words: list[str] = []
        self._interim_sent = 0
        self.spec: ModelSpec | None = None
        self.setup: dict[str, Any] = {}

    # ------------------------------------------------------------------ lifecycle

    @property
    def active(self) -> bool:
        """Whether the session is set up and not closed."""
        return self._ready and not self._closed

    async def run(self) -> None:
        """Serve the connection until it ends; always leaves no task behind."""
        try:
            await self._serve()
        except ProtocolError as err:
            self.record.rejection_detail = err.detail
            with contextlib.suppress(SessionEnded):
                await self._close(err.code, err.reason)
        except SessionEnded:
            pass
        except Exception:
            _LOGGER.exception("Emulator session %s failed", self.record.index)
            with contextlib.suppress(SessionEnded):
                await self._close(1011, INTERNAL)
        finally:
            if self._close_started:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(2.0):
                        await self._close_done.wait()
            await self._stop_tasks()
            if self.record.close_code is None:
                self.record.close_code = self.ws.close_code
                self.record.closed_by = "client"
                if self.ws.close_code is None:
                    self.record.close_code = 1006
            self.record.unanswered_calls = list(self._pending)
            self.record.closed.set()

    async def shutdown(self, code: int, reason: str) -> None:
        """Close the connection from the server side (emulator stop)."""
        with contextlib.suppress(SessionEnded, ConnectionError, RuntimeError):
            await self._close(code, reason)

    async def _stop_tasks(self) -> None:
        self._closed = True
        tasks = [t for t in (*self._tasks, self._driver, self._gen) if t is not None]
        current = asyncio.current_task()
        tasks = [t for t in tasks if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._tasks.clear()

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[Any] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        exc = None if task.cancelled() else task.exception()
        if exc is not None and not isinstance(exc, SessionEnded):
            _LOGGER.error("Emulator task failed", exc_info=exc)

    async def _close(self, code: int, reason: str) -> None:
        if self._closed and self.record.close_code is not None:
            raise SessionEnded
        self._closed = True
        self._close_started = True
        self.record.close_code = code
        self.record.close_reason = reason
        self.record.closed_by = "server"
        try:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.close(code=code, message=reason.encode("utf-8"))
        finally:
            self._close_done.set()
        raise SessionEnded

    async def _drop(self) -> None:
        self._closed = True
        self.record.close_code = 1006
        self.record.close_reason = ""
        self.record.closed_by = "drop"
        transport = self._transport
        if transport is not None:
            # What was sent must reach the peer before the connection dies (an abort discards
            # the transport's buffer): wait for it to drain into the socket, bounded.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    # A transport has no "drained" event to wait for: poll its buffer.
                    while transport.get_write_buffer_size() > 0 and not transport.is_closing():  # noqa: ASYNC110
                        await asyncio.sleep(0.001)
            transport.abort()
        raise SessionEnded

    # ------------------------------------------------------------------ sending

    async def _write(self, msg: dict[str, Any]) -> None:
        data = (json.dumps(msg, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            await self.ws.send_bytes(data)
        except (ConnectionError, RuntimeError) as err:
            self._closed = True
            raise SessionEnded from err
        self._sent_count += 1
        self.record.sent.append(msg)
        self.record.sent_at.append(time.perf_counter())

    async def _send(self, msg: dict[str, Any]) -> None:
        async with self._send_lock:
            if self._closed:
                raise SessionEnded
            await self._fire_due("send")
            kinds = frame_kinds(msg)
            await self._fire_due("before", kinds)
            if self._delay_s > 0:
                await asyncio.sleep(self._delay_s)
            await self._write(msg)
            self._kind_counts.update(kinds)
            await self._fire_due("after", kinds)
            await self._fire_due("send")

    # ------------------------------------------------------------------ faults

    def take_fault(self, fault: Fault) -> None:
        """Arm ``fault`` on this connection (counters start now)."""
        active = _ActiveFault(
            fault, self._sent_count, self._turn_count, collections.Counter(self._kind_counts)
        )
        self._faults.append(active)
        untriggered = (
            fault.after_server_messages is None
            and fault.on_turn is None
            and fault.before is None
            and fault.after is None
        )
        if untriggered and fault.kind == "delay":
            active.fired = True
            self._delay_s = fault.seconds
            self._log_fault(fault)
        elif untriggered and self._ready:
            self._spawn(self._fire_now())

    async def _fire_now(self) -> None:
        async with self._send_lock:
            if not self._closed:
                await self._fire_due("ready")

    def _is_due(self, af: _ActiveFault, point: str, kinds: frozenset[str]) -> bool:
        f = af.fault
        if af.fired:
            return False
        if f.after_server_messages is not None:
            reached = self._sent_count - af.base_sent >= f.after_server_messages
            return point in ("send", "ready") and reached
        if f.on_turn is not None:
            return point == "turn" and self._turn_count - af.base_turn >= f.on_turn
        if f.before is not None:
            sent = self._kind_counts[f.before] - af.base_kinds[f.before]
            return point == "before" and f.before in kinds and sent + 1 >= f.nth
        if f.after is not None:
            sent = self._kind_counts[f.after] - af.base_kinds[f.after]
            return point == "after" and f.after in kinds and sent >= f.nth
        return point == "ready"

    async def _fire_due(self, point: str, kinds: frozenset[str] = frozenset()) -> None:
        for af in self._faults:
            if self._is_due(af, point, kinds):
                af.fired = True
                await self._fire(af.fault)

    def _log_fault(self, fault: Fault) -> None:
        self.record.faults_fired.append(fault.kind)
        self.record.fault_log.append(
            FaultRecord(fault.kind, fault.trigger, self._sent_count, tuple(self._pending))
        )

    async def _fire(self, fault: Fault) -> None:
        self._log_fault(fault)
        if fault.kind == "drop":
            await self._drop()
        elif fault.kind == "close":
            await self._close(fault.code, fault.reason)
        elif fault.kind == "delay":
            self._delay_s = fault.seconds
        elif fault.kind == "malformed":
            await self._raw(b'{\n  "serverContent": {\n    "modelTurn": {\n      "parts": [\n')
        elif fault.kind == "huge":
            size = fault.size or self.cfg.huge_frame_bytes
            head = '{\n  "serverContent": {\n    "modelTurn": {\n      "parts": [\n        {\n'
            head += '          "inlineData": {\n            "mimeType": "' + OUTPUT_MIME + '",\n'
            head += '            "data": "'
            tail = '"\n          }\n        }\n      ]\n    }\n  }\n}\n'
            n = max(4, (size - len(head) - len(tail)) // 4 * 4)
            await self._raw((head + "A" * n + tail).encode())
        elif fault.kind == "go_away":
            await self._write({"goAway": {"timeLeft": format_duration(fault.time_left_s)}})
            self._spawn(self._end_after(fault.time_left_s))

    async def _raw(self, data: bytes) -> None:
        try:
            await self.ws.send_bytes(data)
        except (ConnectionError, RuntimeError) as err:
            self._closed = True
            raise SessionEnded from err

    # ------------------------------------------------------------------ setup

    async def _receive_json(self) -> dict[str, Any] | None:
        msg = await self.ws.receive()
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            return None
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return {}
        try:
            parsed = json.loads(msg.data)
        except json.JSONDecodeError, UnicodeDecodeError:
            raise ProtocolError(1007, "Invalid JSON payload received. Unexpected token.") from None
        if not isinstance(parsed, dict):
            raise ProtocolError(
                1007,
                "Invalid JSON payload received. Expected an object.",
            )
        return parsed

    def _check_vertex_only(self, raw_setup: dict[str, Any]) -> None:
        """Reject the fields only Vertex AI knows, as the Gemini API's parser does."""
        if self.cfg.vertex_only_fields:
            return
        for parents, name in VERTEX_ONLY_FIELDS:
            node: Any = raw_setup
            path = ["setup"]
            for parent in parents:
                node = next((v for k, v in node.items() if k in (parent, _snake(parent))), None)
                if not isinstance(node, dict):
                    break
                path.append(_snake(parent))
            else:
                for key in (name, _snake(name)):
                    if key in node:
                        where = ".".join(path)
                        raise ProtocolError(
                            1007,
                            f'Invalid JSON payload received. Unknown name "{key}" at '
                            f"'{where}': Cannot find field.",
                            f"{name} is a Vertex AI field",
                        )

    async def _serve(self) -> None:
        for fault in self.hub.claim_faults():
            self.take_fault(fault)
        if self.record.method == "BidiGenerateContent":
            if not self._credential:
                await self._wait_first_frame()
                raise ProtocolError(1008, MISSING_KEY)
            if not self.hub.key_ok(self._credential):
                await self._wait_first_frame()
                raise ProtocolError(1007, BAD_API_KEY)
        first = await self._receive_json()
        if first is None:
            raise SessionEnded
        raw_setup = first.get("setup")
        if isinstance(raw_setup, dict):
            self.record.setup = raw_setup
        msg = normalize("ClientMessage", first)
        if list(msg) != ["setup"]:
            raise ProtocolError(1007, INVALID_ARGUMENT, "the first message must be a setup")
        assert isinstance(raw_setup, dict)
        self._check_vertex_only(raw_setup)
        setup = msg["setup"]
        handle = setup.get("sessionResumption", {}).get("handle")
        if self.record.method == "BidiGenerateContentConstrained":
            setup = self.hub.apply_token(self._credential, setup, resuming=bool(handle))
        spec = resolve_model(setup.get("model"), self.record.api_version, self.cfg.retired_models)
        validate_setup(spec, setup, self.record.api_version)
        state: ResumableState | None = None
        if handle:
            state = self.hub.resume_state(handle)
            if state.model != spec.name:
                raise ProtocolError(
                    1007, INVALID_ARGUMENT, "resumption handle belongs to another model"
                )
        if self.record.method == "BidiGenerateContentConstrained":
            self.hub.consume_token(self._credential, resuming=state is not None)
        self.spec = spec
        self.setup = setup
        self.record.effective_setup = setup
        self.record.model = spec.name
        if state is not None:
            self.record.resumed_from = handle
            self._history = copy.deepcopy(state.history)
            self._pending = {p.id: copy.deepcopy(p) for p in state.pending}
        self._init_audio()
        complete: dict[str, Any] = {}
        if spec.session_id:
            complete["sessionId"] = self._session_id()
            self.record.session_id = complete["sessionId"]
        await self._send({"setupComplete": complete})
        self._ready = True
        async with self._send_lock:
            await self._fire_due("ready")
        self._spawn(self._lifetime())
        self._driver = asyncio.create_task(self._drive())
        await self._read_loop()

    def _session_id(self) -> str:
        digest = hashlib.sha256(f"{self.cfg.seed}:{self.record.index}:session".encode()).hexdigest()
        return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"

    async def _wait_first_frame(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.cfg.unauthenticated_wait_s):
                await self.ws.receive()

    def _init_audio(self) -> None:
        aad = self._aad()
        if not aad.get("disabled", False):
            self._vad = EnergyVad(VadSettings.from_setup(aad, self.cfg.default_silence_ms), 16000)

    def _aad(self) -> dict[str, Any]:
        aad: dict[str, Any] = self.setup.get("realtimeInputConfig", {}).get(
            "automaticActivityDetection", {}
        )
        return aad

    @property
    def _vad_disabled(self) -> bool:
        return bool(self._aad().get("disabled", False))

    @property
    def _modality(self) -> str:
        mods = self.setup.get("generationConfig", {}).get("responseModalities", [])
        return "TEXT" if "TEXT" in mods else "AUDIO"

    @property
    def voice(self) -> str:
        """The prebuilt voice the session speaks with."""
        gen = self.setup.get("generationConfig", {})
        voice = gen.get("speechConfig", {}).get("voiceConfig", {}).get("prebuiltVoiceConfig", {})
        return str(voice.get("voiceName", DEFAULT_VOICE))

    @property
    def _sends_voice_activity(self) -> bool:
        assert self.spec is not None
        explicit = bool(self.setup.get("explicitVadSignal")) and self.cfg.vertex_only_fields
        return self.spec.voice_activity or explicit

    # ------------------------------------------------------------------ lifetime

    async def _lifetime(self) -> None:
        life = self.cfg.connection_lifetime_s
        before = min(self.cfg.go_away_before_end_s, life)
        if before > 0:
            await asyncio.sleep(life - before)
            await self._send({"goAway": {"timeLeft": format_duration(before)}})
            await asyncio.sleep(before)
        else:
            await asyncio.sleep(life)
        await self._end_connection()

    async def _end_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self._end_connection()

    async def _end_connection(self) -> None:
        async with self._send_lock:
            await self._close(self.cfg.lifetime_close_code, self.cfg.lifetime_close_reason)

    # ------------------------------------------------------------------ reading

    async def _read_loop(self) -> None:
        while True:
            parsed = await self._receive_json()
            if parsed is None:
                return
            self.record.received.append(parsed)
            self._client_index += 1
            msg = normalize("ClientMessage", parsed)
            if len(msg) != 1:
                raise ProtocolError(1007, INVALID_ARGUMENT, "exactly one message type per frame")
            ((kind, body),) = msg.items()
            if kind == "setup":
                raise ProtocolError(1007, INVALID_ARGUMENT, "setup sent twice")
            if kind == "clientContent":
                await self._on_client_content(body)
            elif kind == "realtimeInput":
                await self._on_realtime_input(body)
            elif kind == "toolResponse":
                await self._on_tool_response(body)
            self._consumed_index = self._client_index

    async def _on_client_content(self, body: dict[str, Any]) -> None:
        texts: list[str] = []
        for turn in body.get("turns", []):
            role = turn.get("role") or "user"
            text = "".join(p.get("text", "") for p in turn.get("parts", []) if not p.get("thought"))
            self._history.append({"role": "model" if role == "model" else "user", "text": text})
            if role != "model" and text:
                texts.append(text)
        # Any clientContent interrupts the current generation (BidiGenerateContentClientContent:
        # "A message here will interrupt any current model generation").
        if self._gen_running:
            await self._interrupt(cancel_calls=True)
        if body.get("turnComplete"):
            text = " ".join(texts)
            if not text:
                users = [h["text"] for h in self._history if h["role"] == "user"]
                text = users[-1] if users else ""
            turn = self._take_scenario(text=text, is_audio=False)
            self._enqueue(_Job("user", text=text, scenario_turn=turn))

    async def _on_realtime_input(self, body: dict[str, Any]) -> None:
        blobs: list[tuple[str, dict[str, Any]]] = []
        if "audio" in body:
            blobs.append(("audio", body["audio"]))
        if "video" in body:
            blobs.append(("video", body["video"]))
        for blob in body.get("mediaChunks", []):
            kind = "audio" if str(blob.get("mimeType", "")).startswith("audio/") else "video"
            blobs.append((kind, blob))
        for kind, blob in blobs:
            if kind == "audio":
                await self._on_audio(blob)
            else:
                await self._on_video()
        if "activityStart" in body:
            if not self._vad_disabled:
                raise ProtocolError(
                    1007, INVALID_ARGUMENT, "activityStart requires automatic VAD disabled"
                )
            if not self._activity_open:
                self._activity_open = True
                self._utterance_audio_ms = 0.0
                await self._speech_started(0, server_vad=False)
        if "activityEnd" in body:
            if not self._vad_disabled:
                raise ProtocolError(
                    1007, INVALID_ARGUMENT, "activityEnd requires automatic VAD disabled"
                )
            if self._activity_open:
                self._activity_open = False
                await self._utterance_ended(0, server_vad=False)
        if body.get("audioStreamEnd"):
            if self._vad is None:
                raise ProtocolError(1007, INVALID_ARGUMENT, "audioStreamEnd requires automatic VAD")
            await self._on_vad_events(self._vad.flush())
        if "text" in body:
            text = body["text"]
            if self._gen_running and self._interrupts:
                await self._interrupt(cancel_calls=True)
            self._history.append({"role": "user", "text": text})
            turn = self._take_scenario(text=text, is_audio=False)
            self._enqueue(_Job("user", text=text, scenario_turn=turn))

    async def _on_video(self) -> None:
        self.record.video_frames += 1
        if not self.setup.get("proactivity", {}).get("proactiveVideo"):
            return
        scenario = self.cfg.scenario
        turn = scenario.take(text=None, is_audio=False, is_video=True) if scenario else None
        if turn is not None:
            self._enqueue(_Job("user", text="", scenario_turn=turn))

    async def _on_audio(self, blob: dict[str, Any]) -> None:
        rate = pcm_rate(str(blob.get("mimeType", "audio/pcm")))
        if self._sample_rate is None:
            self._sample_rate = rate
            if self._vad is not None:
                self._vad = EnergyVad(self._vad.settings, rate)
        elif rate != self._sample_rate:
            raise ProtocolError(1007, f"Sample rate changed from {self._sample_rate} to {rate}.")
        pcm = decode_bytes(str(blob.get("data", "")))
        seconds = len(pcm) / 2 / rate
        self._input_audio_s += seconds
        if self._vad is not None:
            await self._on_vad_events(self._vad.feed(pcm))
        if self._in_utterance:
            self._utterance_audio_ms += seconds * 1000
            await self._send_interim()

    async def _on_vad_events(self, events: list[VadEvent]) -> None:
        for event in events:
            if event.kind == "start":
                await self._speech_started(event.offset_ms, server_vad=True)
            else:
                await self._utterance_ended(event.offset_ms, server_vad=True)

    @property
    def _interrupts(self) -> bool:
        handling = self.setup.get("realtimeInputConfig", {}).get("activityHandling")
        return bool(handling != "NO_INTERRUPTION")

    @property
    def _gen_running(self) -> bool:
        return self._gen is not None and not self._gen.done()

    @property
    def _interim_on(self) -> bool:
        assert self.spec is not None
        return self.spec.interim_transcription and "inputAudioTranscription" in self.setup

    def _transcript_of_next_utterance(self, *, consume: bool) -> str:
        transcript = self.hub.next_transcript() if consume else self.hub.peek_transcript()
        turn = self.hub.scenario_peek()
        if turn is not None and turn.audio:
            transcript = turn.transcript or transcript
        return transcript

    async def _speech_started(self, offset_ms: int, *, server_vad: bool) -> None:
        self._utterance_start_ms = offset_ms
        self._in_utterance = True
        self._utterance_audio_ms = 0.0
        if server_vad and self._sends_voice_activity:
            await self._send_voice_activity("ACTIVITY_START", offset_ms / 1000)
        if self._interim_on:
            heard = self._transcript_of_next_utterance(consume=False)
            self._interim_words = asr.transcribe(
                heard, self.setup["inputAudioTranscription"]
            ).split()
            self._interim_sent = 0
            await self._send_interim()
        if self._gen_running and self._interrupts:
            await self._interrupt(cancel_calls=True)

    async def _send_interim(self) -> None:
        """Send the growing hypothesis: one more word per ``interim_every_ms`` of speech."""
        if not self._interim_on or not self._interim_words:
            return
        due = min(
            len(self._interim_words),
            1 + int(self._utterance_audio_ms // max(1, self.cfg.interim_every_ms)),
        )
        if due > self._interim_sent:
            self._interim_sent = due
            text = " ".join(self._interim_words[:due])
            await self._send({"serverContent": {"interimInputTranscription": {"text": text}}})

    async def _send_voice_activity(self, kind: str, offset_s: float | None) -> None:
        body: dict[str, Any] = {"type": kind}
        if offset_s is not None:
            body["audioOffset"] = format_duration(round(offset_s, 3))
        await self._send({"voiceActivity": body})

    async def _utterance_ended(self, offset_ms: int, *, server_vad: bool) -> None:
        self._in_utterance = False
        if server_vad and self._sends_voice_activity:
            await self._send_voice_activity("ACTIVITY_END", offset_ms / 1000)
        transcript = self._transcript_of_next_utterance(consume=True)
        turn = self._take_scenario(text=transcript, is_audio=True)
        self.record.utterances.append(
            {"start_ms": self._utterance_start_ms, "end_ms": offset_ms, "transcript": transcript}
        )
        if "inputAudioTranscription" in self.setup:
            heard = asr.transcribe(transcript, self.setup["inputAudioTranscription"])
            pieces = split_words(heard, 2 if len(heard.split()) > 3 else 1)
            for i, piece in enumerate(pieces):
                tr: dict[str, Any] = {"text": piece}
                if i == len(pieces) - 1:
                    tr["finished"] = True
                await self._send({"serverContent": {"inputTranscription": tr}})
        self._interim_words = []
        self._history.append({"role": "user", "text": transcript})
        self._enqueue(_Job("user", text=transcript, scenario_turn=turn))

    def _take_scenario(self, *, text: str, is_audio: bool) -> ScenarioTurn | None:
        scenario = self.cfg.scenario
        if scenario is None:
            return None
        return scenario.take(text=text, is_audio=is_audio)

    async def _on_tool_response(self, body: dict[str, Any]) -> None:
        for fr in body.get("functionResponses", []):
            # The Gemini API matches a response to its call by id; one without an id matches no
            # call and is ignored like an unknown id (no close; see README).
            call_id = str(fr.get("id") or "")
            response = fr.get("response", {})
            requested = fr.get("scheduling")
            if requested is None and isinstance(response, dict):
                inner = response.get("scheduling")
                requested = inner if inner in SCHEDULINGS else None
            call = self._pending.pop(call_id, None) if call_id else None
            if call is None:
                self.record.tool_responses.append(
                    ToolResponseRecord(
                        call_id, str(fr.get("name", "")), None, None, requested, response, "unknown"
                    )
                )
                continue
            result = _Result(response, bool(fr.get("name")))
            self._history.append(
                {"role": "tool", "name": call.name, "text": json.dumps(response, sort_keys=True)}
            )
            waiter = self._waiters.pop(call_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(result)
                self._record_response(call, None, requested, response)
                continue
            scheduling = requested if requested in SCHEDULINGS else "WHEN_IDLE"
            awaited = self._awaited.get(call_id)
            if awaited is not None and not awaited.done():
                # The model is waiting for this result to go on with the interaction.
                result.scheduling = scheduling
                awaited.set_result(result)
                self._record_response(call, scheduling, requested, response)
                continue
            if call.behavior != "NON_BLOCKING":
                # A blocking call whose turn no longer waits: speak the result when idle.
                self._record_response(call, "WHEN_IDLE", requested, response)
                self._enqueue(_Job("tool_result", call=call, result=result))
                continue
            self._record_response(call, scheduling, requested, response)
            if scheduling == "WHEN_IDLE":
                self._enqueue(_Job("tool_result", call=call, result=result))
            elif scheduling == "INTERRUPT":
                await self._interrupt(cancel_calls=False)
                self._enqueue(_Job("tool_result", call=call, result=result), front=True)
            elif self._interaction_status_on and not self._gen_running:
                # SILENT: nothing is said, but the interaction may be over now.
                self._enqueue(_Job("tool_result", call=call, result=None))

    def _record_response(
        self, call: PendingCallState, scheduling: str | None, requested: Any, response: Any
    ) -> None:
        self.record.tool_responses.append(
            ToolResponseRecord(
                call.id, call.name, call.behavior, scheduling, requested, response, "applied"
            )
        )

    # ------------------------------------------------------------------ turn engine

    def _enqueue(self, job: _Job, *, front: bool = False) -> None:
        if front:
            self._jobs.appendleft(job)
        else:
            self._jobs.append(job)
        self._jobs_event.set()

    async def _drive(self) -> None:
        while True:
            while not self._jobs:
                self._jobs_event.clear()
                await self._jobs_event.wait()
            job = self._jobs.popleft()
            self._gen = asyncio.create_task(self._generate(job))
            await asyncio.wait([self._gen])
            gen, self._gen = self._gen, None
            if gen.cancelled():
                continue
            exc = gen.exception()
            if exc is None:
                continue
            if isinstance(exc, SessionEnded):
                return
            _LOGGER.error("Emulator turn failed", exc_info=exc)
            async with self._send_lock:
                await self._close(1011, INTERNAL)

    async def _interrupt(self, *, cancel_calls: bool) -> None:
        gen = self._gen
        if gen is None or gen.done():
            return
        self._interrupting = True
        self._interrupt_cancels_calls = cancel_calls
        gen.cancel()
        await asyncio.wait([gen])
        self._interrupting = False

    async def _new_turn(self) -> None:
        self._turn = _TurnState()
        self._turn_count += 1
        async with self._send_lock:
            await self._fire_due("turn")

    async def _generate(self, job: _Job) -> None:
        await self._new_turn()
        try:
            if self.cfg.reply_delay_s > 0:
                await asyncio.sleep(self.cfg.reply_delay_s)
            await self._run_turn(self._plan(job), job)
        except asyncio.CancelledError:
            if self._turn.completed:
                # Cancelled while waiting for background results after the turn ended:
                # nothing to interrupt; the calls stay pending and their results are spoken
                # when they come.
                for call_id in self._turn.awaited:
                    self._awaited.pop(call_id, None)
            elif self._interrupting and not self._closed:
                self._interrupting = False
                await self._emit_interrupted()
            raise

    def _plan(self, job: _Job) -> list[Step]:
        assert self.spec is not None
        if job.kind == "tool_result" and job.call is not None:
            call = job.call
            if job.result is None:  # SILENT
                return []
            if self.spec.background_reasoning and not job.result.named:
                return [Say(rules.SYSTEM_ERROR)]
            return [Say(rules.confirmation(call.name, call.args, job.result.response))]
        if job.scenario_turn is not None:
            return list(job.scenario_turn.steps)
        decls = function_declarations(self.setup)
        non_blocking = {
            str(d["name"]) for d in decls if behavior_of(self.spec, d) == "NON_BLOCKING"
        }
        has_search = any("googleSearch" in t for t in self.setup.get("tools", []))
        return rules.plan_reply(
            job.text,
            self._history,
            decls,
            has_search=has_search,
            non_blocking=non_blocking,
            background=self.spec.background_reasoning,
        )

    @property
    def _thinking_level(self) -> str:
        thinking = self.setup.get("generationConfig", {}).get("thinkingConfig", {})
        level = thinking.get("thinkingLevel")
        return str(level) if level in THINKING_TOKENS else DEFAULT_THINKING_LEVEL

    async def _run_turn(self, steps: list[Step], job: _Job) -> None:
        assert self.spec is not None
        thinking = self.setup.get("generationConfig", {}).get("thinkingConfig", {})
        show_thoughts = bool(thinking.get("includeThoughts")) and self.spec.visible_thoughts
        if show_thoughts and job.kind == "user" and not any(isinstance(s, Thought) for s in steps):
            steps = [Thought(f"**Responding to the request**\n\nThe user said: {job.text}"), *steps]
        if self.spec.background_reasoning and job.kind == "user":
            self._turn.thought_tokens += THINKING_TOKENS[self._thinking_level]
        end = EndTurn()
        for index, step in enumerate(steps):
            if isinstance(step, Say):
                await self._say(step.text)
            elif isinstance(step, Thought):
                if show_thoughts:
                    self._turn.thought_chars += len(step.text)
                    part = {"text": step.text, "thought": True}
                    await self._send({"serverContent": {"modelTurn": {"parts": [part]}}})
            elif isinstance(step, ToolCall):
                awaits = any(isinstance(s, AwaitResults) for s in steps[index + 1 :])
                await self._tool_call(step, awaited_later=awaits)
            elif isinstance(step, AwaitResults):
                await self._await_results()
            elif isinstance(step, SayResult):
                await self._say_result()
            elif isinstance(step, Delay):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Interrupted):
                await self._emit_interrupted(cancel=False)
                return
            elif isinstance(step, GoAway):
                await self._send({"goAway": {"timeLeft": format_duration(step.time_left_s)}})
                self._spawn(self._end_after(step.time_left_s))
            elif isinstance(step, Grounding):
                meta = step.metadata or rules.default_grounding(step.query or job.text, step.text)
                await self._send({"serverContent": {"groundingMetadata": meta}})
            elif isinstance(step, ExecutableCode):
                code = {"language": step.language, "code": step.code}
                await self._model_part({"executableCode": code})
            elif isinstance(step, CodeExecution):
                await self._model_part(
                    {"executableCode": {"language": "PYTHON", "code": step.code}}
                )
                result = {"outcome": step.outcome, "output": step.output}
                await self._model_part({"codeExecutionResult": result})
            elif isinstance(step, UrlContext):
                meta = step.metadata or rules.url_context(step.urls, step.status)
                await self._send({"serverContent": {"urlContextMetadata": meta}})
            elif isinstance(step, VoiceActivitySignal):
                await self._send_voice_activity(step.type, step.audio_offset_s)
            elif isinstance(step, VadSignal):
                await self._send({"voiceActivityDetectionSignal": {"vadSignalType": step.type}})
            elif isinstance(step, EndTurn):
                end = step
        await self._send({"serverContent": {"generationComplete": True}})
        await self._turn_complete(end)

    async def _model_part(self, part: dict[str, Any]) -> None:
        await self._send({"serverContent": {"modelTurn": {"parts": [part]}}})

    async def _say_result(self) -> None:
        assert self.spec is not None
        if self._turn.last_result is None:
            return
        name, args, result = self._turn.last_result
        if result.scheduling == "SILENT":
            return
        if self.spec.background_reasoning and not result.named:
            await self._say(rules.SYSTEM_ERROR)
            return
        await self._say(rules.confirmation(name, args, result.response))

    async def _tool_call(self, step: ToolCall, *, awaited_later: bool) -> None:
        assert self.spec is not None
        decl = rules.find_function(function_declarations(self.setup), step.name)
        name = str(decl["name"]) if decl is not None else step.name
        if decl is not None:
            behavior = behavior_of(self.spec, decl)
        else:
            behavior = "BLOCKING" if self.spec.blocking else "NON_BLOCKING"
        call_id = f"function-call-{self._call_rng.randrange(10**18, 10**19)}"
        call = PendingCallState(call_id, name, dict(step.args), behavior)
        self._pending[call_id] = call
        self.record.tool_calls.append(
            {"id": call_id, "name": name, "args": dict(step.args), "behavior": behavior}
        )
        wait = step.wait_for_response
        if wait is None:
            wait = behavior == "BLOCKING"
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[_Result] | None = None
        if wait:
            waiter = loop.create_future()
            self._waiters[call_id] = waiter
            self._turn.waits.append(call_id)
        elif awaited_later:
            self._awaited[call_id] = loop.create_future()
            self._turn.awaited.append(call_id)
        if self.spec.code_before_tool_call:
            await self._model_part(
                {
                    "executableCode": {
                        "language": "PYTHON",
                        "code": rules.executable_code(name, call.args),
                    }
                }
            )
        wire: dict[str, Any] = {"name": name, "args": call.args}
        if not step.omit_id:
            wire["id"] = call_id
        if step.stream_args:
            await self._stream_call_args(wire)
        await self._send({"toolCall": {"functionCalls": [wire]}})
        if "sessionResumption" in self.setup:
            # Not resumable while the model executes function calls: no handle.
            await self._send({"sessionResumptionUpdate": {}})
        if waiter is not None:
            result = await waiter
            self._turn.waits.remove(call_id)
            self._turn.last_result = (name, call.args, result)

    async def _stream_call_args(self, wire: dict[str, Any]) -> None:
        """Vertex AI's streamed-arguments form: partial frames per argument, then the full call.

        A string argument comes in two pieces (the first with ``willContinue``); every partial
        frame's FunctionCall has ``willContinue: true``.
        """
        head = {k: v for k, v in wire.items() if k != "args"}
        pieces: list[dict[str, Any]] = []
        for key, value in wire["args"].items():
            path = f"$.{key}"
            if isinstance(value, bool):
                pieces.append({"jsonPath": path, "boolValue": value})
            elif isinstance(value, int | float):
                pieces.append({"jsonPath": path, "numberValue": value})
            elif value is None:
                pieces.append({"jsonPath": path, "nullValue": "NULL_VALUE"})
            else:
                text = value if isinstance(value, str) else json.dumps(value)
                half = max(1, len(text) // 2)
                pieces.append({"jsonPath": path, "stringValue": text[:half], "willContinue": True})
                pieces.append({"jsonPath": path, "stringValue": text[half:]})
        for piece in pieces:
            partial = {**head, "partialArgs": [piece], "willContinue": True}
            await self._send({"toolCall": {"functionCalls": [partial]}})

    async def _await_results(self) -> None:
        """End the turn while this interaction's calls run; continue when all are answered."""
        futures = [self._awaited[c] for c in self._turn.awaited if c in self._awaited]
        if all(f.done() for f in futures):
            self._collect_awaited()
            return
        await self._send({"serverContent": {"generationComplete": True}})
        await self._turn_complete(EndTurn())
        self._turn.completed = True
        await asyncio.gather(*futures)
        # The rest of the interaction is a new turn.
        awaited = self._turn.awaited
        await self._new_turn()
        self._turn.awaited = awaited
        self._collect_awaited()

    def _last_awaited(self, ids: list[str]) -> tuple[str, dict[str, Any], _Result] | None:
        for call_id in reversed(ids):
            future = self._awaited.get(call_id)
            if future is not None and future.done():
                call = next(c for c in self.record.tool_calls if c["id"] == call_id)
                return (call["name"], call["args"], future.result())
        return None

    def _collect_awaited(self) -> None:
        last = self._last_awaited(self._turn.awaited)
        if last is not None:
            self._turn.last_result = last
        for call_id in self._turn.awaited:
            self._awaited.pop(call_id, None)
        self._turn.awaited = []

    def _chunk_bytes(self) -> int:
        size = self.cfg.audio_chunk_ms
        if isinstance(size, tuple):
            low, high = size
            ms = self._chunk_rng.randrange(low, high + 1, 10) if high > low else low
        else:
            ms = size
        return max(2, OUTPUT_RATE * ms // 1000 * 2)

    async def _say(self, text: str) -> None:
        if not text:
            return
        if self._modality == "TEXT":
            for piece in split_words(text, math.ceil(len(text.split()) / 5)):
                self._turn.text_chars += len(piece)
                await self._model_part({"text": piece})
            self._history.append({"role": "model", "text": text})
            return
        speech = synthesize(
            text, voice=self.voice, seed=self.cfg.seed, ms_per_char=self.cfg.ms_per_char
        )
        transcribe = "outputAudioTranscription" in self.setup
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        next_word = 0
        offset = 0
        while offset < len(speech.pcm):
            data = speech.pcm[offset : offset + self._chunk_bytes()]
            part = {"inlineData": {"mimeType": OUTPUT_MIME, "data": _b64(data)}}
            await self._model_part(part)
            self._turn.audio_s += len(data) / 2 / OUTPUT_RATE
            offset += len(data)
            if transcribe:
                # The transcription of what a chunk says follows the chunk (as recorded).
                words: list[str] = []
                while next_word < len(speech.words) and speech.word_starts[next_word] < offset // 2:
                    words.append(speech.words[next_word])
                    next_word += 1
                if words:
                    piece = " ".join(words)
                    if self._turn.transcript_started:
                        piece = " " + piece
                    self._turn.transcript_started = True
                    await self._send({"serverContent": {"outputTranscription": {"text": piece}}})
            if self.cfg.pace > 0:
                target = t0 + offset / 2 / OUTPUT_RATE * self.cfg.pace
                delay = target - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
        self._history.append({"role": "model", "text": text})

    def _usage(self) -> dict[str, Any]:
        """Usage of this turn (per turn, not cumulative; see README).

        The prompt is the whole context the turn read (so it grows with the conversation), the
        response what this turn generated.
        """
        text_tokens = PROMPT_OVERHEAD_TOKENS + sum(len(h["text"]) for h in self._history) // 4
        system = self.setup.get("systemInstruction", {})
        text_tokens += sum(len(p.get("text", "")) for p in system.get("parts", [])) // 4
        audio_tokens = math.ceil(self._input_audio_s * AUDIO_IN_TOKENS_PER_S)
        prompt_details = [{"modality": "TEXT", "tokenCount": text_tokens}]
        if audio_tokens:
            prompt_details.append({"modality": "AUDIO", "tokenCount": audio_tokens})
        response_details = []
        out_audio = math.ceil(self._turn.audio_s * AUDIO_OUT_TOKENS_PER_S)
        out_text = math.ceil(self._turn.text_chars / 4)
        if out_text:
            response_details.append({"modality": "TEXT", "tokenCount": out_text})
        if out_audio:
            response_details.append({"modality": "AUDIO", "tokenCount": out_audio})
        prompt = text_tokens + audio_tokens
        response = out_text + out_audio
        thoughts = math.ceil(self._turn.thought_chars / 4) + self._turn.thought_tokens
        usage: dict[str, Any] = {
            "promptTokenCount": prompt,
            "responseTokenCount": response,
        }
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        usage["totalTokenCount"] = prompt + response + thoughts
        usage["promptTokensDetails"] = prompt_details
        if response_details:
            usage["responseTokensDetails"] = response_details
        return usage

    @property
    def _interaction_status_on(self) -> bool:
        return self.spec is not None and self.spec.interaction_status

    def _interaction_status(self) -> str:
        """IN_PROGRESS while NON_BLOCKING calls of the conversation are outstanding, else IDLE."""
        running = any(c.behavior == "NON_BLOCKING" for c in self._pending.values())
        return "IN_PROGRESS" if running else "IDLE"

    async def _turn_complete(self, end: EndTurn) -> None:
        content: dict[str, Any] = {"turnComplete": True}
        if end.turn_complete_reason is not None:
            content["turnCompleteReason"] = end.turn_complete_reason
        if end.waiting_for_input is not None:
            content["waitingForInput"] = end.waiting_for_input
        if self._interaction_status_on:
            content["interactionStatus"] = end.interaction_status or self._interaction_status()
        await self._send({"serverContent": content, "usageMetadata": self._usage()})
        await self._resumption_update()

    async def _emit_interrupted(self, *, cancel: bool = True) -> None:
        cancelled: list[str] = []
        if cancel:
            for call_id in list(self._turn.waits):
                self._waiters.pop(call_id, None)
                if self._pending.pop(call_id, None) is not None:
                    cancelled.append(call_id)
            self._turn.waits.clear()
            if self._interrupt_cancels_calls:
                for call_id, call in list(self._pending.items()):
                    if call.behavior == "NON_BLOCKING" and call_id not in self._waiters:
                        del self._pending[call_id]
                        self._awaited.pop(call_id, None)
                        cancelled.append(call_id)
        await self._send({"serverContent": {"interrupted": True}})
        content: dict[str, Any] = {"turnComplete": True}
        if self._interaction_status_on:
            content["interactionStatus"] = self._interaction_status()
        await self._send({"serverContent": content, "usageMetadata": self._usage()})
        if cancelled:
            await self._send({"toolCallCancellation": {"ids": cancelled}})
        await self._resumption_update()

    async def _resumption_update(self) -> None:
        resumption = self.setup.get("sessionResumption")
        if resumption is None:
            return
        assert self.spec is not None
        self._handle_count += 1
        digest = hashlib.sha256(
            f"{self.cfg.seed}:{self.record.index}:{self._handle_count}".encode()
        ).digest()
        handle = base64.urlsafe_b64encode(digest + digest[:12]).decode("ascii").rstrip("=")
        self.hub.store_state(
            ResumableState(
                handle=handle,
                model=self.spec.name,
                history=copy.deepcopy(self._history),
                pending=[
                    copy.deepcopy(p) for p in self._pending.values() if p.id not in self._waiters
                ],
                created=asyncio.get_running_loop().time(),
                connection_index=self.record.index,
            )
        )
        self.record.handles.append(handle)
        update: dict[str, Any] = {"newHandle": handle, "resumable": True}
        if resumption.get("transparent"):
            update["lastConsumedClientMessageIndex"] = str(self._consumed_index)
        await self._send({"sessionResumptionUpdate": update})


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
