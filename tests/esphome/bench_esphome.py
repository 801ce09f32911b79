"""ESPHome voice latency benchmark (prints numbers; not collected by the test run).

Run: ``pytest -q -s -p no:cacheprovider --no-cov tests/esphome/bench_esphome.py`` (``BENCH_RUNS``
runs per reply kind, default 30; the first run of each kind warms up and is not counted).

Each run: a simulated Voice PE (Noise-encrypted native API) streams the spoken WAV in real time
-> HA's esphome -> assist pipeline -> our STT -> Live emulator (answers at once, audio paced in
real time, 20 ms frames) -> our agent -> our streaming TTS -> FLAC 48 kHz mono (the Voice PE's
announcement format; HA's ffmpeg converts our float WAV on 2026.10, our TTS encodes FLAC itself
on 2026.11+ and HA passes it on) -> HTTP -> the device, which GETs the URL when HA says
``tts_start_streaming`` and streams the body as the firmware does.

- ``added_ms``: the emulator wrote its first reply audio frame -> the first FLAC *audio* byte
  (past the FLAC header) reached the device (everything our bridge and HA add);
- ``eos_ms``: the device sent its last speech chunk -> that first audio byte, minus the
  emulator's end-of-speech window (the decision the service itself takes);
- ``where_ms`` (medians) splits ``added``: ``get`` = emulator frame -> the device's GET of the
  reply URL (HA's ``tts_start_streaming``, right after our STT ends), ``ffmpeg_in`` = GET -> the
  first input HA's ffmpeg got after the emulator's frame (HA spawns ffmpeg for the request;
  our TTS stream; HA's TTS plumbing), ``ffmpeg`` = that -> the first FLAC audio byte HA read
  from ffmpeg, ``http`` = that -> the device. HA's ffmpeg process is observed by wrapping
  ``asyncio.create_subprocess_exec`` (timestamps only). Runs with no ffmpeg conversion print
  ``no_ffmpeg_stream`` = GET -> the first audio byte at the device instead.

A second device announcing SPEAKER (HA streams the reply as PCM over the API after
``TTS_END``, e.g. an ESP32-S3-BOX) is measured too (``satellite=esphome-speaker``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
import contextlib
from dataclasses import dataclass, field
import os
import statistics
import time
from typing import Any
from unittest.mock import patch

from homeassistant.const import __version__ as HA_VERSION
from homeassistant.core import HomeAssistant
import pytest

from devtools.esphome_satellite import (
    EsphomeSatellite,
    RunResult,
    VoiceFeature,
    audio_offset,
)
from devtools.ha_esphome import EsphomeWiring, remove_esphome_satellite
from live_emulator import EmulatorConfig, LiveEmulator, Scenario

from ..conftest import TEST_API_KEY

RUNS = int(os.environ.get("BENCH_RUNS", "30"))
SILENCE_MS = 500  # the emulator's end-of-speech window (no silenceDurationMs in the setup)
REPLIES = {
    "long": (
        "Sure. I turned on the kitchen light for you, and the living room lamp is still on "
        "as well, in case you were wondering."
    ),
    "short": "Done, the light is on.",
}
SPEAKER_FEATURES = (
    VoiceFeature.VOICE_ASSISTANT
    | VoiceFeature.SPEAKER
    | VoiceFeature.API_AUDIO
    | VoiceFeature.TIMERS
    | VoiceFeature.ANNOUNCE
    | VoiceFeature.START_CONVERSATION
)


@pytest.fixture(autouse=True)
async def enable_event_loop_debug() -> None:
    """Measure the loop as Home Assistant runs it: without asyncio debug mode (phcc's tests
    turn it on, which records a traceback for every task and callback)."""
    asyncio.get_running_loop().set_debug(False)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Instant answers, audio paced in real time, 20 ms audio frames."""
    return EmulatorConfig(
        api_keys=frozenset({TEST_API_KEY}),
        pace=1.0,
        audio_chunk_ms=20,
        default_silence_ms=SILENCE_MS,
    )


@dataclass
class _Conversion:
    """One HA ffmpeg conversion to FLAC: when input went in and output came out."""

    writes: list[float] = field(default_factory=list)
    reads: list[tuple[float, int]] = field(default_factory=list)
    out: bytearray = field(default_factory=bytearray)
    first_audio_read_at: float | None = None


class _FfmpegProbe:
    """Timestamps HA's ffmpeg conversions to FLAC (wraps create_subprocess_exec)."""

    def __init__(self) -> None:
        self.conversions: list[_Conversion] = []
        self.version = "?"

    @staticmethod
    def _is_flac_conversion(args: tuple[Any, ...]) -> bool:
        argv = [str(a) for a in args]
        return "pipe:1" in argv and any(
            argv[i] == "-f" and argv[i + 1] == "flac" for i in range(len(argv) - 1)
        )

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        original = asyncio.create_subprocess_exec

        async def spawn(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
            proc = await original(*args, **kwargs)
            if self._is_flac_conversion(args) and proc.stdin and proc.stdout:
                self._instrument(proc)
            return proc

        with patch("asyncio.create_subprocess_exec", spawn):
            yield

    def _instrument(self, proc: asyncio.subprocess.Process) -> None:
        conv = _Conversion()
        self.conversions.append(conv)
        assert proc.stdin is not None
        assert proc.stdout is not None
        write, read = proc.stdin.write, proc.stdout.read

        def timed_write(data: bytes | bytearray | memoryview) -> None:
            conv.writes.append(time.perf_counter())
            write(data)

        async def timed_read(n: int = -1) -> bytes:
            data = await read(n)
            now = time.perf_counter()
            conv.reads.append((now, len(data)))
            conv.out += data
            if conv.first_audio_read_at is None:
                offset = audio_offset(conv.out)
                if offset is not None and len(conv.out) > offset:
                    conv.first_audio_read_at = now
            return data

        proc.stdin.write = timed_write  # type: ignore[method-assign]
        proc.stdout.read = timed_read  # type: ignore[method-assign]

    def around(self, emulator_first: float, device_first: float) -> tuple[float, float] | None:
        """(first ffmpeg input at/after the emulator's frame, first FLAC audio read) of a run."""
        for conv in reversed(self.conversions):
            read_at = conv.first_audio_read_at
            if read_at is None or read_at > device_first:
                continue
            first_in = next((w for w in conv.writes if w >= emulator_first), None)
            if first_in is not None:
                return first_in, read_at
        return None


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _emulator_first_audio(emulator: LiveEmulator, result: RunResult) -> float | None:
    return max(
        (
            at
            for c in emulator.connections
            if (at := c.first_audio_sent_at(after=result.started_at)) is not None
        ),
        default=None,
    )


async def _bench_device(
    hass: HomeAssistant,
    label: str,
    device: EsphomeSatellite,
    wire: Callable[..., Awaitable[EsphomeWiring]],
    emulator: LiveEmulator,
    pcm: bytes,
    probe: _FfmpegProbe | None,
) -> list[str]:
    wiring = await wire(device)
    lines = []
    for kind, reply in REPLIES.items():
        assert (len(reply) > 60) == (kind == "long")
        added: list[float] = []
        eos: list[float] = []
        get: list[float] = []
        ours: list[float] = []
        ffmpeg: list[float] = []
        http: list[float] = []
        direct: list[float] = []  # runs whose reply took no ffmpeg (our FLAC, HA 2026.11+)
        for i in range(RUNS + 1):  # the first run warms up (imports, first ffmpeg spawn)
            emulator.config.scenario = Scenario.from_dict(
                {"turns": [{"match": "audio", "transcript": "bench", "steps": [{"say": reply}]}]}
            )
            result = await device.run(pcm, realtime=True, run_timeout=60)
            assert result.ok, result.summary()
            first = result.first_audio_at
            assert first is not None
            assert result.speech_end_sent_at is not None
            sent = _emulator_first_audio(emulator, result)
            assert sent is not None
            if i == 0:
                continue
            added.append((first - sent) * 1000)
            eos.append((first - result.speech_end_sent_at) * 1000 - SILENCE_MS)
            playback = result.playback
            if probe is None or playback is None:
                continue
            get.append((playback.requested_at - sent) * 1000)
            if (split := probe.around(sent, first)) is None:
                direct.append((first - playback.requested_at) * 1000)
            else:
                ffmpeg_in, ffmpeg_out = split
                ours.append((ffmpeg_in - playback.requested_at) * 1000)
                ffmpeg.append((ffmpeg_out - ffmpeg_in) * 1000)
                http.append((first - ffmpeg_out) * 1000)
        lines.append(
            f"ha={HA_VERSION} satellite={label} reply={kind} "
            f"added_ms p50={statistics.median(added):.1f} p95={_pct(added, 95):.1f} "
            f"eos_ms p50={statistics.median(eos):.1f} p95={_pct(eos, 95):.1f}"
        )
        if ours:
            lines.append(
                f"ha={HA_VERSION} satellite={label} reply={kind} where_ms "
                f"get_p50={statistics.median(get):.1f} "
                f"ffmpeg_in_p50={statistics.median(ours):.1f} "
                f"ffmpeg_p50={statistics.median(ffmpeg):.1f} "
                f"http_p50={statistics.median(http):.1f} (n={len(ours)})"
            )
        if direct:
            lines.append(
                f"ha={HA_VERSION} satellite={label} reply={kind} where_ms "
                f"get_p50={statistics.median(get):.1f} "
                f"no_ffmpeg_stream_p50={statistics.median(direct):.1f} (n={len(direct)})"
            )
    await remove_esphome_satellite(hass, wiring.entry)
    return lines


@pytest.mark.timeout(max(600, RUNS * 120))
async def test_bench_esphome(
    hass: HomeAssistant,
    wire: Callable[..., Awaitable[EsphomeWiring]],
    emulator: LiveEmulator,
    speech: Callable[[str], bytes],
    ffmpeg_setup: str,
    socket_enabled: None,
) -> None:
    """Measure and print added/eos latency through a Voice PE and a SPEAKER device."""
    proc = await asyncio.create_subprocess_exec(
        ffmpeg_setup, "-version", stdout=asyncio.subprocess.PIPE
    )
    ffmpeg_version = (await proc.communicate())[0].decode().split(" Copyright")[0]
    pcm = speech("turn_on_kitchen_light")
    probe = _FfmpegProbe()
    lines = [f"# {ffmpeg_version}, {RUNS} runs per line"]
    with probe.installed():
        async with EsphomeSatellite(noise_psk=EsphomeSatellite.new_psk()) as voice_pe:
            lines += await _bench_device(hass, "esphome", voice_pe, wire, emulator, pcm, probe)
    async with EsphomeSatellite(
        name="esp32-s3-box-3",
        friendly_name="ESP32-S3-BOX-3",
        noise_psk=EsphomeSatellite.new_psk(),
        features=SPEAKER_FEATURES,
    ) as box:
        lines += await _bench_device(hass, "esphome-speaker", box, wire, emulator, pcm, None)
    print("\n" + "\n".join(lines), flush=True)
