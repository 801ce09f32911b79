"""A simulated ESPHome voice satellite (a Home Assistant Voice PE) on the real native API.

Home Assistant's ``esphome`` integration is a TCP *client* of the device (``aioesphomeapi``): it
connects to port 6053, optionally runs the Noise handshake, says ``HelloRequest``, asks
``DeviceInfoRequest`` + ``ListEntitiesRequest``, subscribes to states, Home Assistant
states/services and the voice assistant, asks the voice assistant configuration (wake words) and
pings. :class:`EsphomeSatellite` is the device side of that conversation on 127.0.0.1, written
from the protocol: the frame helpers (plaintext and ``Noise_NNpsk0_25519_ChaChaPoly_SHA256``),
the server role and a voice-assistant state machine modelled on ESPHome's ``voice_assistant``
component. Only the protobuf message bodies come from ``aioesphomeapi.api_pb2``.

A run, as the firmware does it::

    device: VoiceAssistantRequest(start=True, conversation_id, wake_word_phrase)
    HA:     VoiceAssistantResponse(port=0: audio over the API | port=N: audio over UDP to N)
    device: VoiceAssistantAudio(32 ms of 16 kHz PCM16) ... in real time
    HA:     VoiceAssistantEventResponse RUN_START(url) STT_START STT_END(text) INTENT_START
            INTENT_PROGRESS(tts_start_streaming=1) ... INTENT_END(conversation_id,
            continue_conversation) TTS_START(text) TTS_END(url) RUN_END

The reply reaches the device in one of two ways, chosen by HA from the feature flags in
``DeviceInfoResponse``:

- without ``SPEAKER`` (a Voice PE: its voice assistant plays through its media player), HA
  converts the TTS to the media player's *announcement* format and sends its URL; the device
  GETs it (at ``INTENT_PROGRESS`` with ``tts_start_streaming=1``, else at ``TTS_END``) and
  streams the body, then tells HA it finished playing (``VoiceAssistantAnnounceFinished``);
- with ``SPEAKER``, HA streams 16 kHz PCM16 itself after ``TTS_END``, between ``TTS_STREAM_START``
  and ``TTS_STREAM_END`` events: as ``VoiceAssistantAudio`` messages with ``API_AUDIO``, else
  as UDP datagrams to the address the microphone datagrams came from.

Every message and pipeline event is stamped with :func:`time.perf_counter` on arrival; reply
bytes are recorded with their arrival times, and the first byte of *audio* (past a FLAC / WAV /
ID3 header) is told apart from the first byte of the body.

Typical use::

    async with EsphomeSatellite(noise_psk=EsphomeSatellite.new_psk()) as device:
        ...  # add an esphome config entry for 127.0.0.1:device.port (see devtools.ha_esphome)
        await device.wait_connected()
        result = await device.run(pcm16k)
        assert result.ok, result.summary()

Every wait is bounded; :meth:`EsphomeSatellite.stop` closes the listener, the connections, the
HTTP session and the UDP socket, and awaits every task it started.
"""

from __future__ import annotations

import array
import asyncio
import base64
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
import contextlib
from dataclasses import dataclass, field
import enum
import logging
import secrets
import struct
import time
from types import TracebackType
from typing import Any, ClassVar, Final, Self

from aioesphomeapi import api_options_pb2, api_pb2
import aiohttp
from google.protobuf.descriptor import (  # type: ignore[import-untyped, unused-ignore]
    Descriptor,
    FileDescriptor,
)
from google.protobuf.message import (  # type: ignore[import-untyped, unused-ignore]
    DecodeError,
    Message,
)
from noise.connection import NoiseConnection  # type: ignore[import-untyped, unused-ignore]

_LOGGER = logging.getLogger(__name__)

MIC_RATE: Final = 16000
"""Microphone sample rate (what the firmware sends and HA's pipeline expects)."""
MIC_WIDTH: Final = 2
"""Microphone sample width in bytes (signed 16-bit little endian)."""
MIC_CHUNK_MS: Final = 32
"""The firmware sends its microphone in 32 ms messages (512 samples)."""

NOISE_PROTOCOL: Final = b"Noise_NNpsk0_25519_ChaChaPoly_SHA256"
_NOISE_PROLOGUE: Final = b"NoiseAPIInit"
_INDICATOR_PLAIN: Final = 0x00
_INDICATOR_NOISE: Final = 0x01
_MAX_NOISE_HANDSHAKE: Final = 128
_MAX_PLAIN_FRAME: Final = 1 << 20
_STOP_TIMEOUT: Final = 5.0


class VoiceFeature(enum.IntFlag):
    """``DeviceInfoResponse.voice_assistant_feature_flags`` bits (ESPHome native API)."""

    VOICE_ASSISTANT = 1 << 0
    SPEAKER = 1 << 1
    """The voice assistant has its own speaker: HA streams the reply as PCM (API or UDP)."""
    API_AUDIO = 1 << 2
    """Audio (microphone, and with SPEAKER the reply) goes over the API connection, not UDP."""
    TIMERS = 1 << 3
    ANNOUNCE = 1 << 4
    """``VoiceAssistantAnnounceRequest`` (played through the media player)."""
    START_CONVERSATION = 1 << 5
    """Announce, then listen without a wake word."""
    MULTI_CHANNEL_AUDIO = 1 << 6


VOICE_PE_FEATURES: Final = (
    VoiceFeature.VOICE_ASSISTANT
    | VoiceFeature.API_AUDIO
    | VoiceFeature.TIMERS
    | VoiceFeature.ANNOUNCE
    | VoiceFeature.START_CONVERSATION
)
"""What a Home Assistant Voice PE announces (its voice assistant plays via its media player)."""

# ESPHome's VoiceAssistantRequestFlag
FLAG_USE_VAD: Final = 1 << 0
FLAG_USE_WAKE_WORD: Final = 1 << 1

# MediaPlayerState / MediaPlayerCommand / MediaPlayerFormatPurpose (api.proto enums)
_MP_IDLE: Final = 1
_MP_PLAYING: Final = 2  # the firmware reports ANNOUNCING as PLAYING
_MP_CMD_PLAY: Final = 0
_MP_CMD_PAUSE: Final = 1
_MP_CMD_STOP: Final = 2
_MP_CMD_MUTE: Final = 3
_MP_CMD_UNMUTE: Final = 4
_MP_CMD_ENQUEUE: Final = 8

PURPOSE_DEFAULT: Final = 0
PURPOSE_ANNOUNCEMENT: Final = 1

# MediaPlayerEntityFeature bits a Voice PE's speaker media player announces.
_MP_FEATURES: Final = (
    (1 << 0)  # PAUSE
    | (1 << 2)  # VOLUME_SET
    | (1 << 3)  # VOLUME_MUTE
    | (1 << 9)  # PLAY_MEDIA
    | (1 << 12)  # STOP
    | (1 << 14)  # PLAY
    | (1 << 17)  # BROWSE_MEDIA
    | (1 << 20)  # MEDIA_ANNOUNCE
)


@dataclass(frozen=True, slots=True)
class MediaFormat:
    """A ``MediaPlayerSupportedFormat``: what HA's ffmpeg proxy / TTS converts to."""

    format: str
    sample_rate: int
    num_channels: int
    purpose: int
    sample_bytes: int = 2


VOICE_PE_FORMATS: Final = (
    MediaFormat("flac", 48000, 2, PURPOSE_DEFAULT),
    MediaFormat("flac", 48000, 1, PURPOSE_ANNOUNCEMENT),
)
"""The Voice PE's media player formats (media pipeline stereo, announcement pipeline mono)."""


@dataclass(frozen=True, slots=True)
class WakeWord:
    """A wake word model the device offers (micro_wake_word)."""

    id: str
    wake_word: str
    trained_languages: tuple[str, ...] = ("en",)


VOICE_PE_WAKE_WORDS: Final = (
    WakeWord("okay_nabu", "Okay Nabu"),
    WakeWord("hey_jarvis", "Hey Jarvis"),
    WakeWord("hey_mycroft", "Hey Mycroft"),
)


# -- protobuf messages ------------------------------------------------------------------------


# The generated modules carry no type information (aioesphomeapi ignores them the same way).
_API_FILE: FileDescriptor = api_pb2.DESCRIPTOR  # type: ignore[attr-defined]
_ID_OPTION: Any = api_options_pb2.id  # type: ignore[attr-defined]


def _descriptor(message: Message | type[Message]) -> Descriptor:
    descriptor: Descriptor = getattr(message, "DESCRIPTOR")  # noqa: B009 - typed as None
    return descriptor


def _message_tables() -> tuple[dict[str, int], dict[int, type[Message]]]:
    """Message ids from the ``(id)`` option of each message in api.proto."""
    by_name: dict[str, int] = {}
    by_id: dict[int, type[Message]] = {}
    for name in _API_FILE.message_types_by_name:
        cls: type[Message] = getattr(api_pb2, name)
        options = _descriptor(cls).GetOptions()  # type: ignore[no-untyped-call, unused-ignore]
        msg_id = int(options.Extensions[_ID_OPTION])
        if msg_id:
            by_name[name] = msg_id
            by_id[msg_id] = cls
    return by_name, by_id


_ID_BY_NAME, _CLASS_BY_ID = _message_tables()
_EVENT_NAMES: Final = {
    value.number: value.name.removeprefix("VOICE_ASSISTANT_")
    for value in _API_FILE.enum_types_by_name["VoiceAssistantEvent"].values
}
_TIMER_EVENT_NAMES: Final = {
    value.number: value.name.removeprefix("VOICE_ASSISTANT_TIMER_")
    for value in _API_FILE.enum_types_by_name["VoiceAssistantTimerEvent"].values
}


def _msg(type_name: str, /, **fields: Any) -> Message:
    """Build an api.proto message by name."""
    cls: type[Message] = getattr(api_pb2, type_name)
    return cls(**fields)


def _serialize(message: Message) -> bytes:
    data: bytes = message.SerializeToString(deterministic=True)  # type: ignore[no-untyped-call, unused-ignore]
    return data


def _f(message: Message, name: str) -> Any:
    """A field of a message (generated classes carry no type information)."""
    return getattr(message, name)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


async def _read_varint(reader: asyncio.StreamReader) -> int:
    result = 0
    for shift in range(0, 64, 7):
        byte = (await reader.readexactly(1))[0]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result
    raise ProtocolError("varint too long")


class ProtocolError(Exception):
    """The client broke the framing or the handshake."""


# -- frame helpers ------------------------------------------------------------------------------


class _PlainFrames:
    """Plaintext frames: ``0x00 | varint(len) | varint(type) | protobuf``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def handshake(self) -> None:
        """Nothing to negotiate."""

    async def read(self) -> tuple[int, bytes]:
        """Read one message: (type, body)."""
        indicator = (await self._reader.readexactly(1))[0]
        if indicator != _INDICATOR_PLAIN:
            # A Noise client (0x01): a plaintext device just drops the connection.
            raise ProtocolError(f"bad indicator byte {indicator} on a plaintext device")
        length = await _read_varint(self._reader)
        msg_type = await _read_varint(self._reader)
        if length > _MAX_PLAIN_FRAME:
            raise ProtocolError(f"frame too large ({length} bytes)")
        return msg_type, await self._reader.readexactly(length)

    def write(self, messages: Sequence[tuple[int, bytes]]) -> None:
        """Write messages in one TCP write."""
        self._writer.write(
            b"".join(
                bytes((_INDICATOR_PLAIN,)) + _encode_varint(len(body)) + _encode_varint(t) + body
                for t, body in messages
            )
        )


class _NoiseFrames:
    """Noise frames: ``0x01 | u16be(len) | payload``, encrypted after the handshake.

    Handshake (responder, Noise_NNpsk0_25519_ChaChaPoly_SHA256, prologue ``NoiseAPIInit`` +
    u16be(len(client hello)) + client hello): the client sends an empty hello frame and a
    handshake frame ``0x00 | noise message``; the device answers a server hello
    ``0x01 | name | 0 | mac | 0`` and ``0x00 | noise message``, or ``0x01 | reason`` to refuse
    (``Handshake MAC failure`` = wrong key). A transport message decrypts to
    ``u16be(type) | u16be(len) | protobuf``.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        psk: bytes,
        name: str,
        mac: str,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._psk = psk
        self._name = name
        self._mac = mac
        self._proto: NoiseConnection | None = None

    async def _read_frame(self) -> bytes:
        header = await self._reader.readexactly(3)
        if header[0] != _INDICATOR_NOISE:
            if self._proto is None:
                # A plaintext client: refuse so that it reports "requires encryption".
                self._write_frame(bytes((_INDICATOR_NOISE,)) + b"Bad indicator byte")
            raise ProtocolError(f"bad indicator byte {header[0]} on a Noise device")
        return await self._reader.readexactly((header[1] << 8) | header[2])

    def _write_frame(self, payload: bytes) -> None:
        self._writer.write(struct.pack(">BH", _INDICATOR_NOISE, len(payload)) + payload)

    async def handshake(self) -> None:
        """Run the responder side of the handshake (raises ProtocolError on failure)."""
        hello = await self._read_frame()
        proto = NoiseConnection.from_name(NOISE_PROTOCOL)
        proto.set_as_responder()
        proto.set_psks(self._psk)
        proto.set_prologue(_NOISE_PROLOGUE + struct.pack(">H", len(hello)) + hello)
        proto.start_handshake()
        mac_hex = self._mac.replace(":", "").lower()
        self._write_frame(
            bytes((_INDICATOR_NOISE,)) + self._name.encode() + b"\0" + mac_hex.encode() + b"\0"
        )
        frame = await self._read_frame()
        if len(frame) > _MAX_NOISE_HANDSHAKE:
            self._write_frame(bytes((_INDICATOR_NOISE,)) + b"Bad handshake packet len")
            raise ProtocolError("handshake frame too large")
        if not frame or frame[0] != 0x00:
            self._write_frame(bytes((_INDICATOR_NOISE,)) + b"Bad handshake error byte")
            raise ProtocolError("bad handshake frame")
        try:
            proto.read_message(frame[1:])
        except Exception as err:
            self._write_frame(bytes((_INDICATOR_NOISE,)) + b"Handshake MAC failure")
            raise ProtocolError(f"handshake failed: {err!r}") from err
        self._write_frame(b"\x00" + proto.write_message())
        self._proto = proto

    async def read(self) -> tuple[int, bytes]:
        """Read and decrypt one message: (type, body)."""
        frame = await self._read_frame()
        assert self._proto is not None
        try:
            plain = self._proto.decrypt(frame)
        except Exception as err:
            raise ProtocolError(f"decryption failed: {err!r}") from err
        if len(plain) < 4:
            raise ProtocolError("decrypted message too short")
        msg_type, length = struct.unpack(">HH", plain[:4])
        return msg_type, plain[4 : 4 + length]

    def write(self, messages: Sequence[tuple[int, bytes]]) -> None:
        """Encrypt and write messages in one TCP write."""
        assert self._proto is not None
        out = bytearray()
        for msg_type, body in messages:
            cipher = self._proto.encrypt(struct.pack(">HH", msg_type, len(body)) + body)
            out += struct.pack(">BH", _INDICATOR_NOISE, len(cipher)) + cipher
        self._writer.write(bytes(out))


# -- records ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A native API message received from Home Assistant, stamped on arrival."""

    name: str
    at: float
    """``time.perf_counter()`` when the message was read."""
    message: Message = field(repr=False)


@dataclass(frozen=True, slots=True)
class PipelineEvent:
    """A ``VoiceAssistantEventResponse``: ``type`` is the event name, e.g. ``RUN_START``."""

    type: str
    data: dict[str, str]
    at: float


@dataclass(frozen=True, slots=True)
class PipelineError:
    """An ``ERROR`` pipeline event."""

    code: str
    message: str
    at: float


@dataclass(frozen=True, slots=True)
class TimerEvent:
    """A ``VoiceAssistantTimerEventResponse``."""

    type: str
    timer_id: str
    name: str
    total_seconds: int
    seconds_left: int
    is_active: bool
    at: float


def audio_offset(data: bytes | bytearray) -> int | None:
    """Where the audio starts in a FLAC / WAV / MP3 (ID3) body; None until the header is complete.

    FLAC: after the last metadata block; WAV: after the ``data`` chunk header; MP3: after an
    ID3v2 tag. Anything else starts at 0.
    """
    if data[:4] == b"fLaC":
        pos = 4
        while True:
            if len(data) < pos + 4:
                return None
            last = data[pos] & 0x80
            pos += 4 + int.from_bytes(data[pos + 1 : pos + 4], "big")
            if last:
                return pos if len(data) >= pos else None
    if data[:4] == b"RIFF":
        pos = 12
        while True:
            if len(data) < pos + 8:
                return None
            chunk, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
            if chunk == b"data":
                return pos + 8
            pos += 8 + size + (size & 1)
    if data[:3] == b"ID3":
        if len(data) < 10:
            return None
        size = 0
        for byte in data[6:10]:
            size = (size << 7) | (byte & 0x7F)
        return 10 + size
    if len(data) < 4 and any(prefix.startswith(bytes(data)) for prefix in (b"fLaC", b"RIFF")):
        return None
    return 0


@dataclass
class Playback:
    """One URL the device played (a reply, an announcement, media): its HTTP body as it came."""

    url: str
    purpose: str
    """``tts`` (a run's reply), ``preannounce``, ``announce`` or ``media``."""
    requested_at: float
    status: int | None = None
    content_type: str | None = None
    headers_at: float | None = None
    first_byte_at: float | None = None
    first_audio_at: float | None = None
    """First byte past the container header (FLAC metadata, WAV header, ID3 tag)."""
    finished_at: float | None = None
    stopped: bool = False
    """Playback was stopped before the body ended (barge-in, stop command, disconnect)."""
    error: str | None = None
    chunks: list[tuple[float, int]] = field(default_factory=list)
    """(arrival time, byte count) of every body read."""
    audio_start: int | None = None
    _body: bytearray = field(default_factory=bytearray, repr=False)
    _done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _on_first_audio: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def body(self) -> bytes:
        """The whole body received so far."""
        return bytes(self._body)

    @property
    def audio_bytes(self) -> int:
        """Bytes of audio (past the container header) received so far."""
        return 0 if self.audio_start is None else max(0, len(self._body) - self.audio_start)

    @property
    def done(self) -> bool:
        """True once the body ended, failed or was stopped."""
        return self._done.is_set()

    @property
    def completed(self) -> bool:
        """True if the whole body arrived with status 200."""
        return self.done and self.status == 200 and not self.stopped and self.error is None

    async def wait(self, within: float = 30.0) -> Self:
        """Wait (bounded; raises TimeoutError) until the playback ended."""
        async with asyncio.timeout(within):
            await self._done.wait()
        return self

    def _feed(self, data: bytes, at: float) -> None:
        if self.first_byte_at is None:
            self.first_byte_at = at
        self._body += data
        self.chunks.append((at, len(data)))
        if self.audio_start is None:
            self.audio_start = audio_offset(self._body)
        if (
            self.first_audio_at is None
            and self.audio_start is not None
            and len(self._body) > self.audio_start
        ):
            self.first_audio_at = at
            if self._on_first_audio is not None:
                self._on_first_audio()


@dataclass
class Announcement:
    """A ``VoiceAssistantAnnounceRequest`` and how it was played."""

    media_id: str
    text: str
    preannounce_media_id: str
    start_conversation: bool
    received_at: float
    playbacks: list[Playback] = field(default_factory=list)
    finished_at: float | None = None
    """When ``VoiceAssistantAnnounceFinished`` was sent."""
    follow_up: RunHandle | None = None
    """The run started after it (``start_conversation``)."""
    _done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    async def wait(self, within: float = 30.0) -> Self:
        """Wait (bounded; raises TimeoutError) until the announcement finished playing."""
        async with asyncio.timeout(within):
            await self._done.wait()
        return self


@dataclass
class RunResult:
    """Everything the device observed during one pipeline run, filled in live.

    All ``*_at`` fields are ``time.perf_counter()`` values (seconds) or None.
    """

    index: int
    trigger: str
    """``wake_word`` (started by the user), ``continue_conversation`` or ``start_conversation``."""
    conversation_id_sent: str
    started_at: float
    """When ``VoiceAssistantRequest(start=True)`` was sent."""
    response_at: float | None = None
    audio_mode: str | None = None
    """``api`` (port 0 in the response) or ``udp``."""
    udp_port: int | None = None
    failed_to_start: bool = False
    events: list[PipelineEvent] = field(default_factory=list)
    errors: list[PipelineError] = field(default_factory=list)
    stt_text: str | None = None
    tts_text: str | None = None
    tts_url: str | None = None
    """The URL from ``RUN_START`` (streaming TTS) or ``TTS_END``."""
    conversation_id: str | None = None
    """From ``INTENT_END``."""
    continue_conversation: bool = False
    speech: str | None = None
    """``INTENT_END``'s speech."""
    playback: Playback | None = None
    """The reply played from its URL (devices without SPEAKER)."""
    stream_started_at: float | None = None
    stream_ended_at: float | None = None
    stream_chunks: list[tuple[float, int]] = field(default_factory=list)
    """(arrival time, byte count) of streamed reply audio (devices with SPEAKER)."""
    announce_finished_at: float | None = None
    """When the device told HA the reply finished playing."""
    run_end_at: float | None = None
    speech_end_sent_at: float | None = None
    """When the last non-silent microphone chunk was sent."""
    mic_stopped_at: float | None = None
    mic_bytes_sent: int = 0
    mic_chunks_sent: int = 0
    superseded: bool = False
    """A newer run started (barge-in) before this one finished."""
    disconnected: bool = False
    timed_out: bool = False
    finished_at: float | None = None
    follow_up: RunHandle | None = None
    """The run the device started by itself after this reply (continue conversation)."""
    _pcm: bytearray = field(default_factory=bytearray, repr=False)

    @property
    def streamed_pcm(self) -> bytes:
        """Reply audio streamed by HA (16 kHz mono PCM16), for devices with SPEAKER."""
        return bytes(self._pcm)

    @property
    def first_audio_at(self) -> float | None:
        """First reply audio byte at the device (URL body past its header, or streamed PCM)."""
        if self.playback is not None:
            return self.playback.first_audio_at
        return self.stream_chunks[0][0] if self.stream_chunks else None

    @property
    def reply_bytes(self) -> int:
        """Reply audio bytes received (past any container header)."""
        if self.playback is not None:
            return self.playback.audio_bytes
        return len(self._pcm)

    @property
    def reply_done(self) -> bool:
        """True once the reply audio ended (body complete, or ``TTS_STREAM_END``)."""
        if self.playback is not None:
            return self.playback.done
        return self.stream_ended_at is not None

    @property
    def event_types(self) -> list[str]:
        """Pipeline event names in arrival order."""
        return [event.type for event in self.events]

    def event(self, event_type: str) -> PipelineEvent | None:
        """The first event of a type."""
        return next((e for e in self.events if e.type == event_type), None)

    @property
    def speech_end_to_first_audio(self) -> float | None:
        """Seconds from the last voiced mic chunk to the first reply audio byte."""
        if self.speech_end_sent_at is None or (first := self.first_audio_at) is None:
            return None
        return first - self.speech_end_sent_at

    @property
    def ok(self) -> bool:
        """A transcript, ``RUN_END``, a complete reply, no error, no drop, no timeout."""
        if self.playback is not None:
            reply_ok = self.playback.completed
        else:
            reply_ok = self.stream_ended_at is not None
        return (
            self.stt_text is not None
            and self.run_end_at is not None
            and reply_ok
            and not self.errors
            and not self.failed_to_start
            and not self.disconnected
            and not self.timed_out
        )

    def summary(self) -> str:
        """One line for assertion messages and logs."""
        latency = self.speech_end_to_first_audio
        playback = self.playback
        return (
            f"run#{self.index}({self.trigger}) stt={self.stt_text!r} "
            f"reply={self.reply_bytes}B "
            f"latency={'-' if latency is None else f'{latency * 1000:.0f}ms'} "
            f"errors={[(e.code, e.message) for e in self.errors]} "
            f"playback={None if playback is None else (playback.status, playback.error)} "
            f"disconnected={self.disconnected} timed_out={self.timed_out} "
            f"superseded={self.superseded} events={self.event_types}"
        )


@dataclass(frozen=True, slots=True)
class _MicSource:
    pcm: bytes
    realtime: bool
    trailing_silence_ms: int
    max_stream_s: float
    silence_threshold: int


class RunHandle:
    """A pipeline run in progress; :attr:`result` is filled in live."""

    def __init__(self, result: RunResult, mic: _MicSource, run_timeout: float) -> None:
        """Prepare the run (the device attaches the microphone task)."""
        self.result = result
        self._mic = mic
        self._run_timeout = run_timeout
        self._done = asyncio.Event()
        self._started = asyncio.Event()  # VoiceAssistantResponse received
        self._mic_stop = asyncio.Event()
        self._first_audio = asyncio.Event()
        self._event_arrived = asyncio.Event()
        self._mic_task: asyncio.Task[None] | None = None
        self._reply_started = False  # URL playback started / stream started
        self._past_tts_end = False

    @property
    def done(self) -> bool:
        """True once the run finished (reply played, error, drop, supersede or timeout)."""
        return self._done.is_set()

    async def wait(self, within: float | None = None) -> RunResult:
        """Wait until the run finishes (default bound: ``run_timeout``); never raises.

        On timeout the run finishes with ``timed_out=True`` and its microphone stops.
        """
        try:
            async with asyncio.timeout(self._run_timeout if within is None else within):
                await self._done.wait()
        except TimeoutError:
            self.result.timed_out = True
            self._finish()
        await self._stop_mic()
        return self.result

    async def wait_event(self, event_type: str, within: float = 15.0) -> PipelineEvent:
        """Wait (bounded; raises TimeoutError) for a pipeline event of this run."""
        async with asyncio.timeout(within):
            while (event := self.result.event(event_type)) is None:
                self._event_arrived.clear()
                await self._event_arrived.wait()
        return event

    async def wait_first_audio(self, within: float = 15.0) -> None:
        """Wait (bounded; raises TimeoutError) until the first reply audio byte arrived."""
        async with asyncio.timeout(within):
            await self._first_audio.wait()

    def _finish(self) -> None:
        if not self._done.is_set():
            self.result.finished_at = time.perf_counter()
            self._done.set()
        self._mic_stop.set()

    async def _stop_mic(self) -> None:
        self._mic_stop.set()
        task = self._mic_task
        if task is None or task.done():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({task}, timeout=_STOP_TIMEOUT)

    def _record(self, event: PipelineEvent) -> None:
        self.result.events.append(event)
        self._event_arrived.set()

    def _audio_arrived(self) -> None:
        if not self._first_audio.is_set():
            self._first_audio.set()


class _UdpAudio(asyncio.DatagramProtocol):
    """The device's UDP socket: microphone out, reply audio in (devices without API_AUDIO)."""

    def __init__(self, on_datagram: Callable[[bytes, float], None]) -> None:
        self._on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._on_datagram(data, time.perf_counter())


class _Connection:
    """One API connection from Home Assistant."""

    def __init__(
        self,
        device: EsphomeSatellite,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.device = device
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer_host: str = peer[0] if peer else "127.0.0.1"
        self.frames: _PlainFrames | _NoiseFrames
        if device.noise_psk is None:
            self.frames = _PlainFrames(reader, writer)
        else:
            self.frames = _NoiseFrames(
                reader,
                writer,
                base64.b64decode(device.noise_psk),
                device.name,
                device.mac,
            )
        self.ready = False
        self.voice_subscribed = False
        self.closed = asyncio.Event()

    def send(self, *messages: Message) -> None:
        """Send messages (dropped once the connection is closing)."""
        if self.closed.is_set() or self.writer.is_closing():
            return
        self.frames.write([(_ID_BY_NAME[_descriptor(m).name], _serialize(m)) for m in messages])

    async def drain(self) -> None:
        """Wait for the socket's write buffer (backpressure)."""
        if not self.writer.is_closing():
            await self.writer.drain()

    def abort(self) -> None:
        """Drop the connection at once (a device going off the network)."""
        transport = self.writer.transport
        transport.abort()


# -- the device ---------------------------------------------------------------------------------


class EsphomeSatellite:
    """An ESPHome voice satellite (Voice PE by default) on 127.0.0.1.

    - answers the connection set-up (hello, device info, entities: a media player), pings,
      ``DisconnectRequest``, voice-assistant configuration requests (wake words);
    - runs pipelines (:meth:`start_run` / :meth:`run`): real-time microphone, every event
      recorded, the reply fetched from its URL or received as streamed PCM;
    - continues the conversation by itself when ``INTENT_END`` says so, with the next speech
      queued by :meth:`queue_speech` (else silence: the user says nothing);
    - plays announcements (``VoiceAssistantAnnounceRequest``) and media player URLs;
    - can drop its connection (:meth:`disconnect`) and go offline.
    """

    def __init__(
        self,
        name: str = "home-assistant-voice-0a1b2c",
        *,
        friendly_name: str = "Home Assistant Voice 0a1b2c",
        mac: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        noise_psk: str | None = None,
        features: VoiceFeature = VOICE_PE_FEATURES,
        media_player: bool = True,
        media_formats: Sequence[MediaFormat] = VOICE_PE_FORMATS,
        wake_words: Sequence[WakeWord] = VOICE_PE_WAKE_WORDS,
        active_wake_words: Sequence[str] = ("okay_nabu",),
        api_version: tuple[int, int] = (1, 14),
        esphome_version: str = "2026.10.0",
        model: str = "Home Assistant Voice PE",
        project: tuple[str, str] = ("Nabu Casa.Home Assistant Voice PE", "26.10.0"),
    ) -> None:
        """Configure the device (call :meth:`start` or use ``async with``).

        ``noise_psk`` (base64 of 32 bytes, see :meth:`new_psk`) makes the API Noise-encrypted.
        """
        self.name = name
        self.friendly_name = friendly_name
        self.mac = mac or "20:F8:3B:" + ":".join(f"{b:02X}" for b in secrets.token_bytes(3))
        self.host = host
        self.noise_psk = noise_psk
        self.features = VoiceFeature(features)
        self.has_media_player = media_player
        self.media_formats = tuple(media_formats)
        self.wake_words = tuple(wake_words)
        self.active_wake_words = list(active_wake_words)
        self.api_version = api_version
        self.esphome_version = esphome_version
        self.model = model
        self.project = project
        self.media_player_key = 0x4D504C59  # fixed32 entity key
        self._requested_port = port
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._conn_tasks: set[asyncio.Task[Any]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._voice: _Connection | None = None
        self._connected = asyncio.Event()
        self._changed = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None
        self._udp: _UdpAudio | None = None
        self._offline = False
        self._speech: deque[bytes] = deque()
        self._conversation_id = ""
        self._media_state = _MP_IDLE
        self._volume = 0.5
        self._muted = False
        self._wake_word = "Okay Nabu"
        self._current_playback: Playback | None = None
        self._playback_task: asyncio.Task[Any] | None = None
        self.runs: list[RunHandle] = []
        """Every run, in start order (including ones the device started by itself)."""
        self.received: list[ReceivedMessage] = []
        """Every message received on an established connection (pings excluded)."""
        self.announcements: list[Announcement] = []
        self.media_plays: list[Playback] = []
        """URLs played through ``MediaPlayerCommandRequest``."""
        self.timer_events: list[TimerEvent] = []
        self.connection_count = 0
        """TCP connections accepted (config-flow probes included)."""
        self.voice_subscriptions = 0
        """How many times HA subscribed to the voice assistant (1 + reconnects)."""
        self.protocol_errors: list[str] = []

    # -- lifecycle ------------------------------------------------------------------------------

    @staticmethod
    def new_psk() -> str:
        """A fresh Noise pre-shared key (base64 of 32 random bytes), as the dashboard makes."""
        return base64.b64encode(secrets.token_bytes(32)).decode()

    @property
    def port(self) -> int:
        """The TCP port Home Assistant must connect to."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("EsphomeSatellite is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def connected(self) -> bool:
        """True while HA's voice-assistant connection is open."""
        return self._voice is not None

    async def start(self) -> None:
        """Start listening."""
        if self._server is not None:
            raise RuntimeError("EsphomeSatellite already started")
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=30),
            connector=aiohttp.TCPConnector(force_close=True),
        )
        if not self.features & VoiceFeature.API_AUDIO:
            loop = asyncio.get_running_loop()
            _, self._udp = await loop.create_datagram_endpoint(
                lambda: _UdpAudio(self._on_udp_datagram), local_addr=(self.host, 0)
            )
        self._server = await asyncio.start_server(self._on_client, self.host, self._requested_port)
        _LOGGER.debug("ESPHome device %r listening on %s:%s", self.name, self.host, self.port)

    async def stop(self) -> None:
        """Finish every run, close everything, and await every task."""
        for run in self.runs:
            run._finish()
            await run._stop_mic()
        server = self._server
        if server is not None:
            server.close()
        for conn in list(self._connections):
            conn.abort()
        self._stop_playback()
        tasks = {t for t in (*self._tasks, *self._conn_tasks) if not t.done()}
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_STOP_TIMEOUT)
        if server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_STOP_TIMEOUT):
                    await server.wait_closed()
        if self._udp is not None and self._udp.transport is not None:
            self._udp.transport.close()
        self._udp = None
        if self._http is not None:
            await self._http.close()
        self._http = None
        self._server = None

    async def __aenter__(self) -> Self:
        """Start the device."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the device."""
        await self.stop()

    async def wait_connected(self, within: float = 30.0) -> None:
        """Wait until HA subscribed to the voice assistant (raises TimeoutError)."""
        try:
            async with asyncio.timeout(within):
                await self._connected.wait()
        except TimeoutError:
            raise TimeoutError(
                f"Home Assistant did not subscribe to the voice assistant of {self.name} "
                f"within {within} s (connections so far: {self.connection_count}, "
                f"protocol errors: {self.protocol_errors})"
            ) from None

    async def wait_for(self, predicate: Callable[[], object], within: float = 30.0) -> None:
        """Wait (bounded; raises TimeoutError) until ``predicate()`` is true.

        Re-checked whenever the device receives something or a run changes.
        """
        async with asyncio.timeout(within):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def wait_for_run(self, index: int, within: float = 30.0) -> RunHandle:
        """Wait until run ``index`` exists (e.g. a follow-up the device starts by itself)."""
        await self.wait_for(lambda: len(self.runs) > index, within)
        return self.runs[index]

    async def disconnect(self, *, stop_playback: bool = True) -> None:
        """Drop HA's connection, as a device leaving the network; HA reconnects by itself.

        Unfinished runs end (``disconnected``); with ``stop_playback`` the reply being
        fetched stops too (the network is gone).
        """
        conn = self._voice
        if stop_playback:
            self._stop_playback()
        if conn is not None:
            conn.abort()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_STOP_TIMEOUT):
                    await conn.closed.wait()

    def set_offline(self, offline: bool) -> None:
        """Refuse (True) or accept (False) new connections."""
        self._offline = offline

    def queue_speech(self, *pcm16k: bytes) -> None:
        """What the user says in the following runs the device starts by itself."""
        self._speech.extend(pcm16k)

    def reset_conversation(self) -> None:
        """Forget the conversation id (the firmware does after ``conversation_timeout``)."""
        self._conversation_id = ""

    # -- runs ---------------------------------------------------------------------------------

    async def run(self, pcm16k: bytes, **kwargs: Any) -> RunResult:
        """Run one pipeline and return its result once finished (see :meth:`start_run`)."""
        handle = await self.start_run(pcm16k, **kwargs)
        return await handle.wait()

    async def start_run(
        self,
        pcm16k: bytes,
        *,
        wake_word_phrase: str = "Okay Nabu",
        realtime: bool = True,
        trailing_silence_ms: int = 0,
        max_stream_s: float = 20.0,
        silence_threshold: int = 100,
        run_timeout: float = 60.0,
    ) -> RunHandle:
        """The wake word was heard: start a run and stream ``pcm16k`` as the microphone.

        If a reply is still playing, it stops first, as ``voice_assistant.stop`` does (the
        media player stops, and before ``TTS_END`` the run is aborted with
        ``VoiceAssistantRequest(start=False)``); the older run is marked ``superseded``.

        The microphone sends ``pcm16k``, ``trailing_silence_ms`` of silence, then silence until
        ``STT_VAD_END``, ``RUN_END``, an error or ``max_stream_s`` (the firmware keeps the
        microphone open until then). ``realtime`` paces chunks at the wall-clock rate;
        otherwise ``pcm16k`` goes as fast as possible and only the silence after it is paced.
        """
        self._interrupt_current()
        self._wake_word = wake_word_phrase
        return self._start(
            "wake_word",
            _MicSource(pcm16k, realtime, trailing_silence_ms, max_stream_s, silence_threshold),
            run_timeout=run_timeout,
        )

    async def stop_current(self) -> None:
        """The user pressed the button / said stop: ``voice_assistant.stop`` semantics."""
        self._interrupt_current()

    def _active_runs(self) -> list[RunHandle]:
        return [run for run in self.runs if not run.done]

    def _interrupt_current(self) -> None:
        """Stop what plays and abort a run before its ``TTS_END`` (``voice_assistant.stop``)."""
        conn = self._voice
        playing = self._current_playback
        if playing is not None and playing.purpose != "media":
            self._stop_playback()
        for run in self._active_runs():
            run.result.superseded = True
            if conn is not None and not run._past_tts_end and run.result.run_end_at is None:
                conn.send(_msg("VoiceAssistantRequest", start=False))
            run._finish()

    def _start(self, trigger: str, mic: _MicSource, *, run_timeout: float = 60.0) -> RunHandle:
        """Send ``VoiceAssistantRequest(start=True)`` and attach the microphone."""
        if len(mic.pcm) % MIC_WIDTH:
            raise ValueError("pcm16k must hold whole 16-bit samples")
        conn = self._voice
        if conn is None:
            raise ConnectionError("HA is not subscribed to the voice assistant (wait_connected)")
        result = RunResult(
            index=len(self.runs),
            trigger=trigger,
            conversation_id_sent=self._conversation_id,
            started_at=time.perf_counter(),
        )
        handle = RunHandle(result, mic, run_timeout)
        self.runs.append(handle)
        # The Voice PE detects the wake word itself (no USE_WAKE_WORD) and leaves the end of
        # speech to HA (no USE_VAD); a follow-up run sends the last wake word again.
        conn.send(
            _msg(
                "VoiceAssistantRequest",
                start=True,
                conversation_id=self._conversation_id,
                flags=0,
                audio_settings=_msg(
                    "VoiceAssistantAudioSettings",
                    noise_suppression_level=0,
                    auto_gain=0,
                    volume_multiplier=1.0,
                ),
                wake_word_phrase=self._wake_word,
            )
        )
        result.started_at = time.perf_counter()
        handle._mic_task = self._spawn(self._stream_mic(handle, conn), "esphome device mic")
        self._changed.set()
        return handle

    def _auto_run(self, trigger: str) -> RunHandle | None:
        """Listen again without a wake word (continue / start conversation)."""
        if self._voice is None:
            return None
        pcm = self._speech.popleft() if self._speech else b""
        return self._start(trigger, _MicSource(pcm, True, 0, 20.0, 100))

    async def _stream_mic(self, handle: RunHandle, conn: _Connection) -> None:
        """Send the microphone until told to stop (see start_run)."""
        mic = handle._mic
        result = handle.result
        try:
            async with asyncio.timeout(10):
                await _first_of(handle._started, handle._mic_stop)
        except TimeoutError:
            _LOGGER.debug("No VoiceAssistantResponse within 10 s")
            return
        if handle._mic_stop.is_set() or result.failed_to_start:
            return
        chunk_bytes = MIC_RATE * MIC_WIDTH * MIC_CHUNK_MS // 1000
        chunk_s = MIC_CHUNK_MS / 1000
        audio = mic.pcm + bytes(MIC_RATE * MIC_WIDTH * mic.trailing_silence_ms // 1000)
        n_audio_chunks = -(-len(audio) // chunk_bytes)
        last_voiced = _last_voiced_chunk(mic.pcm, chunk_bytes, mic.silence_threshold)
        silence = bytes(chunk_bytes)
        udp_target = (conn.peer_host, result.udp_port) if result.audio_mode == "udp" else None
        deadline = time.perf_counter() + mic.max_stream_s
        start = time.perf_counter()
        paced_from: float | None = start if mic.realtime else None
        paced_index = 0
        index = 0
        try:
            while not handle._mic_stop.is_set():
                now = time.perf_counter()
                if now >= deadline:
                    _LOGGER.debug("Microphone stopped after max_stream_s")
                    break
                if index < n_audio_chunks:
                    chunk = audio[index * chunk_bytes : (index + 1) * chunk_bytes]
                    chunk += bytes(chunk_bytes - len(chunk))
                else:
                    chunk = silence
                    if paced_from is None:
                        paced_from, paced_index = now, index
                if paced_from is not None:
                    delay = paced_from + (index - paced_index) * chunk_s - time.perf_counter()
                    if delay > 0:
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(delay):
                                await handle._mic_stop.wait()
                    if handle._mic_stop.is_set():
                        break
                if udp_target is not None:
                    udp = self._udp
                    if udp is None or udp.transport is None:
                        break
                    udp.transport.sendto(chunk, udp_target)
                else:
                    conn.send(_msg("VoiceAssistantAudio", data=chunk))
                    await conn.drain()
                result.mic_bytes_sent += len(chunk)
                result.mic_chunks_sent += 1
                if index == last_voiced:
                    result.speech_end_sent_at = time.perf_counter()
                index += 1
                if paced_from is None and index % 8 == 0:
                    await asyncio.sleep(0)
        except (ConnectionError, RuntimeError) as err:
            _LOGGER.debug("Microphone stream ended: %r", err)
        finally:
            result.mic_stopped_at = time.perf_counter()

    # -- connections ----------------------------------------------------------------------------

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conn_tasks.add(task)
            task.add_done_callback(self._conn_tasks.discard)
        if self._offline:
            writer.transport.abort()
            return
        self.connection_count += 1
        conn = _Connection(self, reader, writer)
        self._connections.add(conn)
        try:
            await conn.frames.handshake()
            while True:
                msg_type, body = await conn.frames.read()
                self._dispatch(conn, msg_type, body)
        except ProtocolError as err:
            self.protocol_errors.append(str(err))
            _LOGGER.debug("Protocol error: %s", err)
        except (ConnectionError, asyncio.IncompleteReadError, OSError) as err:
            _LOGGER.debug("Connection from HA ended: %r", err)
        finally:
            self._connections.discard(conn)
            conn.closed.set()
            self._connection_closed(conn)
            writer.transport.abort()

    def _connection_closed(self, conn: _Connection) -> None:
        if conn is not self._voice:
            return
        self._voice = None
        self._connected.clear()
        for run in self._active_runs():
            run.result.disconnected = True
            run._finish()
        self._changed.set()

    def _dispatch(self, conn: _Connection, msg_type: int, body: bytes) -> None:
        now = time.perf_counter()
        cls = _CLASS_BY_ID.get(msg_type)
        if cls is None:
            _LOGGER.debug("Ignoring unknown message type %s", msg_type)
            return
        message = cls()
        name = _descriptor(cls).name
        try:
            message.ParseFromString(body)  # type: ignore[no-untyped-call, unused-ignore]
        except DecodeError:
            _LOGGER.debug("Dropping malformed %s", name)
            return
        if name == "PingRequest":
            conn.send(_msg("PingResponse"))
            return
        if name == "PingResponse":
            return
        self.received.append(ReceivedMessage(name, now, message))
        handler = self._HANDLERS.get(name)
        if handler is None:
            _LOGGER.debug("No handler for %s", name)
        else:
            handler(self, conn, message, now)
        self._changed.set()

    # -- connection set-up ------------------------------------------------------------------------

    def _on_hello(self, conn: _Connection, message: Message, now: float) -> None:
        major, minor = self.api_version
        conn.send(
            _msg(
                "HelloResponse",
                api_version_major=major,
                api_version_minor=minor,
                server_info=f"{self.name} (esphome v{self.esphome_version})",
                name=self.name,
            )
        )
        conn.ready = True

    def _on_authenticate(self, conn: _Connection, message: Message, now: float) -> None:
        conn.send(_msg("AuthenticationResponse", invalid_password=False))

    def _on_disconnect_request(self, conn: _Connection, message: Message, now: float) -> None:
        conn.send(_msg("DisconnectResponse"))
        self._spawn(self._close_soon(conn), "esphome device disconnect")

    async def _close_soon(self, conn: _Connection) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await conn.drain()
        conn.writer.close()

    def _on_device_info(self, conn: _Connection, message: Message, now: float) -> None:
        project_name, project_version = self.project
        conn.send(
            _msg(
                "DeviceInfoResponse",
                uses_password=False,
                name=self.name,
                friendly_name=self.friendly_name,
                mac_address=self.mac,
                esphome_version=self.esphome_version,
                compilation_time="Oct 10 2026, 10:00:00",
                model=self.model,
                manufacturer="Nabu Casa",
                project_name=project_name,
                project_version=project_version,
                voice_assistant_feature_flags=int(self.features),
                legacy_voice_assistant_version=(
                    2 if self.features & VoiceFeature.SPEAKER else 1 if self.features else 0
                ),
                api_encryption_supported=self.noise_psk is not None,
            )
        )

    def _on_list_entities(self, conn: _Connection, message: Message, now: float) -> None:
        messages: list[Message] = []
        if self.has_media_player:
            messages.append(
                _msg(
                    "ListEntitiesMediaPlayerResponse",
                    object_id="media_player",
                    key=self.media_player_key,
                    name="Media Player",
                    supports_pause=True,
                    feature_flags=_MP_FEATURES,
                    supported_formats=[
                        _msg(
                            "MediaPlayerSupportedFormat",
                            format=f.format,
                            sample_rate=f.sample_rate,
                            num_channels=f.num_channels,
                            purpose=f.purpose,
                            sample_bytes=f.sample_bytes,
                        )
                        for f in self.media_formats
                    ],
                )
            )
        messages.append(_msg("ListEntitiesDoneResponse"))
        conn.send(*messages)

    def _on_subscribe_states(self, conn: _Connection, message: Message, now: float) -> None:
        if self.has_media_player:
            conn.send(self._media_state_message())

    def _on_ignored(self, conn: _Connection, message: Message, now: float) -> None:
        """Subscriptions with nothing to send (logs, HA states/services, time)."""

    def _on_subscribe_voice(self, conn: _Connection, message: Message, now: float) -> None:
        if _f(message, "subscribe"):
            if self._voice is not None and self._voice is not conn:
                # As the firmware: a second API client cannot take the voice assistant.
                _LOGGER.debug("A second client tried to subscribe to the voice assistant")
                return
            self._voice = conn
            conn.voice_subscribed = True
            self.voice_subscriptions += 1
            self._connected.set()
        elif self._voice is conn:
            self._voice = None
            conn.voice_subscribed = False
            self._connected.clear()

    def _on_va_configuration_request(self, conn: _Connection, message: Message, now: float) -> None:
        conn.send(
            _msg(
                "VoiceAssistantConfigurationResponse",
                available_wake_words=[
                    _msg(
                        "VoiceAssistantWakeWord",
                        id=w.id,
                        wake_word=w.wake_word,
                        trained_languages=list(w.trained_languages),
                    )
                    for w in self.wake_words
                ],
                active_wake_words=self.active_wake_words,
                max_active_wake_words=2,
            )
        )

    def _on_va_set_configuration(self, conn: _Connection, message: Message, now: float) -> None:
        known = {w.id for w in self.wake_words}
        self.active_wake_words = [w for w in _f(message, "active_wake_words") if w in known]

    # -- voice assistant ---------------------------------------------------------------------------

    def _current_run(self) -> RunHandle | None:
        return self.runs[-1] if self.runs else None

    def _on_va_response(self, conn: _Connection, message: Message, now: float) -> None:
        run = next((r for r in reversed(self.runs) if r.result.response_at is None), None)
        if run is None:
            return
        result = run.result
        result.response_at = now
        if _f(message, "error"):
            result.failed_to_start = True
            run._finish()
            return
        port = int(_f(message, "port"))
        if port == 0:
            result.audio_mode = "api"
        else:
            result.audio_mode, result.udp_port = "udp", port
        run._started.set()

    def _event_owner(self, event_type: str) -> RunHandle | None:
        """The run a pipeline event belongs to (events carry no run id).

        Events go to the newest run once it has seen ``RUN_START``; before that, to the run
        before it (a late event of the previous pipeline), unless that one already ended.
        ``TTS_STREAM_END`` closes whichever run has a stream open.
        """
        if event_type == "TTS_STREAM_END":
            return next(
                (
                    r
                    for r in self.runs
                    if r.result.stream_started_at is not None and r.result.stream_ended_at is None
                ),
                None,
            )
        if not self.runs:
            return None
        newest = self.runs[-1]
        if event_type == "RUN_START" or newest.result.event("RUN_START") is not None:
            return newest
        if len(self.runs) > 1:
            previous = self.runs[-2]
            if previous.result.run_end_at is None and previous.result.event("RUN_START"):
                return previous
        return newest

    def _on_va_event(self, conn: _Connection, message: Message, now: float) -> None:
        event_type = _EVENT_NAMES.get(
            int(_f(message, "event_type")), str(_f(message, "event_type"))
        )
        data = {str(d.name): str(d.value) for d in _f(message, "data")}
        event = PipelineEvent(event_type, data, now)
        run = self._event_owner(event_type)
        if run is None:
            _LOGGER.debug("Pipeline event %s without a run", event_type)
            return
        run._record(event)
        result = run.result
        mic_running = not run._mic_stop.is_set()
        match event_type:
            case "RUN_START":
                if url := data.get("url"):
                    result.tts_url = url
            case "STT_VAD_END":
                run._mic_stop.set()
            case "STT_END":
                result.stt_text = data.get("text", "")
            case "INTENT_PROGRESS":
                if (
                    data.get("tts_start_streaming") == "1"
                    and result.tts_url
                    and self._plays_url_replies
                    and not run._reply_started
                    and not run.done
                ):
                    self._play_reply(run, result.tts_url)
            case "INTENT_END":
                if cid := data.get("conversation_id"):
                    result.conversation_id = cid
                    self._conversation_id = cid
                result.continue_conversation = data.get("continue_conversation") == "1"
                result.speech = data.get("speech")
            case "TTS_START":
                result.tts_text = data.get("text")
            case "TTS_END":
                run._past_tts_end = True
                url = data.get("url")
                if url:
                    result.tts_url = result.tts_url or url
                    if self.features & VoiceFeature.SPEAKER:
                        run._reply_started = True  # HA streams it (TTS_STREAM_START follows)
                    elif self._plays_url_replies and not run._reply_started and not run.done:
                        self._play_reply(run, url)
            case "TTS_STREAM_START":
                result.stream_started_at = now
                run._reply_started = True
            case "TTS_STREAM_END":
                if result.stream_ended_at is None:
                    result.stream_ended_at = now
                    self._reply_finished(run)
                self._maybe_finish(run)
            case "RUN_END":
                result.run_end_at = now
                run._mic_stop.set()
                self._maybe_finish(run)
            case "ERROR":
                code, text = data.get("code", ""), data.get("message", "")
                if code in {"wake-word-timeout", "wake_word_detection_aborted", "no_wake_word"}:
                    return
                result.errors.append(PipelineError(code, text, now))
                if mic_running and conn is self._voice:
                    conn.send(_msg("VoiceAssistantRequest", start=False))
                self._maybe_finish(run)
            case _:
                pass

    @property
    def _plays_url_replies(self) -> bool:
        """Replies come as a URL for the media player (no SPEAKER on the voice assistant)."""
        return not self.features & VoiceFeature.SPEAKER and self.has_media_player

    def _play_reply(self, run: RunHandle, url: str) -> None:
        run._reply_started = True
        playback = self._play(url, "tts", on_first_audio=run._audio_arrived)
        run.result.playback = playback

        async def played() -> None:
            await playback._done.wait()
            if not playback.stopped:
                self._reply_finished(run)
            self._maybe_finish(run)

        self._spawn(played(), "esphome device reply")

    def _reply_finished(self, run: RunHandle) -> None:
        """The reply finished playing: tell HA (media player path), maybe listen again."""
        result = run.result
        conn = self._voice
        if result.superseded or conn is None:
            return
        if self._plays_url_replies:
            conn.send(_msg("VoiceAssistantAnnounceFinished", success=True))
            result.announce_finished_at = time.perf_counter()
        if result.continue_conversation and result.follow_up is None:
            result.follow_up = self._auto_run("continue_conversation")
        self._changed.set()

    def _maybe_finish(self, run: RunHandle) -> None:
        """A run is over at an error, or at ``RUN_END`` once its reply (if any) ended."""
        result = run.result
        failed = bool(result.errors) or result.failed_to_start
        ended = result.run_end_at is not None and (not run._reply_started or result.reply_done)
        if failed or ended:
            run._finish()
        self._changed.set()

    def _on_va_audio(self, conn: _Connection, message: Message, now: float) -> None:
        self._streamed_audio(bytes(_f(message, "data")), now)

    def _on_udp_datagram(self, data: bytes, at: float) -> None:
        self._streamed_audio(data, at)
        self._changed.set()

    def _streamed_audio(self, data: bytes, at: float) -> None:
        run = next(
            (
                r
                for r in reversed(self.runs)
                if r.result.stream_ended_at is None
                and (r.result.stream_started_at is not None or r._past_tts_end)
            ),
            None,
        )
        if run is None:
            _LOGGER.debug("Reply audio without a run (%d bytes)", len(data))
            return
        run.result._pcm += data
        run.result.stream_chunks.append((at, len(data)))
        run._audio_arrived()

    def _on_timer_event(self, conn: _Connection, message: Message, now: float) -> None:
        self.timer_events.append(
            TimerEvent(
                _TIMER_EVENT_NAMES.get(int(_f(message, "event_type")), "?"),
                str(_f(message, "timer_id")),
                str(_f(message, "name")),
                int(_f(message, "total_seconds")),
                int(_f(message, "seconds_left")),
                bool(_f(message, "is_active")),
                now,
            )
        )

    def _on_announce(self, conn: _Connection, message: Message, now: float) -> None:
        announcement = Announcement(
            media_id=str(_f(message, "media_id")),
            text=str(_f(message, "text")),
            preannounce_media_id=str(_f(message, "preannounce_media_id")),
            start_conversation=bool(_f(message, "start_conversation")),
            received_at=now,
        )
        self.announcements.append(announcement)
        self._spawn(self._announce(conn, announcement), "esphome device announce")

    async def _announce(self, conn: _Connection, announcement: Announcement) -> None:
        """Play the pre-announcement and the announcement, then report (and maybe listen).

        As the firmware: the pre-announcement replaces what plays, the announcement is
        enqueued (it plays after a reply still playing).
        """
        for url, purpose in (
            (announcement.preannounce_media_id, "preannounce"),
            (announcement.media_id, "announce"),
        ):
            if not url:
                continue
            if purpose == "announce":
                await self._wait_playing()
            playback = self._play(url, purpose)
            announcement.playbacks.append(playback)
            await playback._done.wait()
            if playback.stopped:
                break
        if conn is self._voice and not conn.closed.is_set():
            conn.send(_msg("VoiceAssistantAnnounceFinished", success=True))
            announcement.finished_at = time.perf_counter()
            if announcement.start_conversation:
                announcement.follow_up = self._auto_run("start_conversation")
        announcement._done.set()
        self._changed.set()

    # -- media player ----------------------------------------------------------------------------

    def _media_state_message(self) -> Message:
        return _msg(
            "MediaPlayerStateResponse",
            key=self.media_player_key,
            state=self._media_state,
            volume=self._volume,
            muted=self._muted,
        )

    def _set_media_state(self, state: int) -> None:
        if state == self._media_state:
            return
        self._media_state = state
        conn = self._voice
        if conn is not None and self.has_media_player:
            conn.send(self._media_state_message())

    def _on_media_command(self, conn: _Connection, message: Message, now: float) -> None:
        if _f(message, "has_volume"):
            self._volume = float(_f(message, "volume"))
        command = int(_f(message, "command")) if _f(message, "has_command") else None
        if _f(message, "has_media_url"):
            url = str(_f(message, "media_url"))
            if command == _MP_CMD_ENQUEUE:
                self._spawn(self._enqueue_media(url), "esphome device enqueue")
            else:
                self.media_plays.append(self._play(url, "media"))
        elif command is not None:
            if command in (_MP_CMD_STOP, _MP_CMD_PAUSE):
                self._stop_playback()
            elif command == _MP_CMD_MUTE:
                self._muted = True
            elif command == _MP_CMD_UNMUTE:
                self._muted = False
        conn.send(self._media_state_message())

    async def _wait_playing(self) -> None:
        """Wait until nothing plays (an enqueued URL plays after the current one)."""
        while (playing := self._current_playback) is not None and not playing.done:
            await playing._done.wait()

    async def _enqueue_media(self, url: str) -> None:
        await self._wait_playing()
        self.media_plays.append(self._play(url, "media"))

    def _play(
        self, url: str, purpose: str, on_first_audio: Callable[[], None] | None = None
    ) -> Playback:
        """Play a URL on the media player (replacing whatever plays): stream its body."""
        self._stop_playback()
        playback = Playback(url=url, purpose=purpose, requested_at=time.perf_counter())
        playback._on_first_audio = on_first_audio
        self._current_playback = playback
        self._playback_task = self._spawn(self._fetch(playback), f"esphome device {purpose}")
        self._set_media_state(_MP_PLAYING)
        return playback

    def _stop_playback(self) -> None:
        playback, task = self._current_playback, self._playback_task
        self._current_playback = self._playback_task = None
        if playback is not None and not playback.done:
            playback.stopped = True
            playback.finished_at = time.perf_counter()
            playback._done.set()
        if task is not None and not task.done():
            task.cancel()
        self._set_media_state(_MP_IDLE)

    async def _fetch(self, playback: Playback) -> None:
        """GET the URL and stream the body, as the firmware's HTTP audio reader does."""
        session = self._http
        try:
            if session is None:
                raise RuntimeError("device not started")
            async with session.get(playback.url) as response:
                playback.status = response.status
                playback.content_type = response.headers.get("Content-Type")
                playback.headers_at = time.perf_counter()
                if response.status != 200:
                    playback.error = f"HTTP {response.status}"
                    return
                async for data in response.content.iter_any():
                    playback._feed(data, time.perf_counter())
                    self._changed.set()
        except asyncio.CancelledError:
            playback.stopped = True
            raise
        except (aiohttp.ClientError, TimeoutError, RuntimeError) as err:
            playback.error = repr(err)
        finally:
            if playback.finished_at is None:
                playback.finished_at = time.perf_counter()
            playback._done.set()
            if self._current_playback is playback:
                self._current_playback = self._playback_task = None
                self._set_media_state(_MP_IDLE)
            self._changed.set()

    # -- helpers ----------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name, eager_start=True)
        if not task.done():
            self._tasks.add(task)
            task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            _LOGGER.error("ESPHome device task %s failed: %r", task.get_name(), exc)

    _HANDLERS: ClassVar[dict[str, Callable[[EsphomeSatellite, _Connection, Message, float], None]]]


EsphomeSatellite._HANDLERS = {
    "HelloRequest": EsphomeSatellite._on_hello,
    "AuthenticationRequest": EsphomeSatellite._on_authenticate,
    "DisconnectRequest": EsphomeSatellite._on_disconnect_request,
    "DeviceInfoRequest": EsphomeSatellite._on_device_info,
    "ListEntitiesRequest": EsphomeSatellite._on_list_entities,
    "SubscribeStatesRequest": EsphomeSatellite._on_subscribe_states,
    "SubscribeLogsRequest": EsphomeSatellite._on_ignored,
    "SubscribeHomeassistantServicesRequest": EsphomeSatellite._on_ignored,
    "SubscribeHomeAssistantStatesRequest": EsphomeSatellite._on_ignored,
    "GetTimeResponse": EsphomeSatellite._on_ignored,
    "SubscribeVoiceAssistantRequest": EsphomeSatellite._on_subscribe_voice,
    "VoiceAssistantConfigurationRequest": EsphomeSatellite._on_va_configuration_request,
    "VoiceAssistantSetConfiguration": EsphomeSatellite._on_va_set_configuration,
    "VoiceAssistantResponse": EsphomeSatellite._on_va_response,
    "VoiceAssistantEventResponse": EsphomeSatellite._on_va_event,
    "VoiceAssistantAudio": EsphomeSatellite._on_va_audio,
    "VoiceAssistantTimerEventResponse": EsphomeSatellite._on_timer_event,
    "VoiceAssistantAnnounceRequest": EsphomeSatellite._on_announce,
    "MediaPlayerCommandRequest": EsphomeSatellite._on_media_command,
}


async def _first_of(*events: asyncio.Event) -> None:
    """Wait until any of the events is set (no task left behind)."""
    tasks = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


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
