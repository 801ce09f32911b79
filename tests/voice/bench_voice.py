"""Voice latency benchmark (prints numbers; run by ``scripts/bench voice``, not by the tests).

Each run: a real Wyoming satellite peer streams the spoken WAV in real time to HA's wyoming
integration -> assist pipeline -> our STT -> Live emulator (answers at once, audio paced in real
time) -> our agent -> our streaming TTS -> HA's ffmpeg -> satellite.

- ``added_ms``: the emulator wrote its first reply audio frame -> the satellite got its first
  reply audio chunk (everything our bridge and HA add).
- ``eos_ms``: the satellite sent its last speech chunk -> first reply audio chunk, minus the
  emulator's VAD silence window (the end-of-speech decision the service itself takes).
Both for long replies (> 60 characters of transcript) and short ones (< 60), one line each:
``ha=<version> satellite=wyoming reply=<long|short> added_ms p50=.. p95=.. eos_ms p50=.. p95=..``.
The emulator sends audio as the real server does (200-240 ms chunks, paced in real time).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import os
import statistics

from homeassistant.const import __version__ as HA_VERSION
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from devtools.ha_voice import SatelliteWiring
from devtools.wyoming_satellite import FakeSatellite
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
ENGINES = {
    "stt_engine": "stt.gemini_live",
    "tts_engine": "tts.gemini_live_voice",
    "conversation_engine": "conversation.gemini_live",
}


@pytest.fixture(autouse=True)
async def enable_event_loop_debug() -> None:
    """Measure the loop as Home Assistant runs it: without asyncio debug mode (phcc's tests
    turn it on, which records a traceback for every task and callback)."""
    asyncio.get_running_loop().set_debug(False)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Instant answers, audio paced in real time in the real server's chunk sizes."""
    return EmulatorConfig(
        api_keys=frozenset({TEST_API_KEY}), pace=1.0, default_silence_ms=SILENCE_MS
    )


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


@pytest.mark.timeout(0)  # a benchmark, not a test: BENCH_RUNS decides how long it takes
async def test_bench_voice(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    satellite: FakeSatellite,
    wire_ha_to_satellite: Callable[..., Awaitable[SatelliteWiring]],
    emulator: LiveEmulator,
    speech: Callable[[str], bytes],
    ffmpeg_setup: str,
) -> None:
    """Measure and print added/eos latency for long and short replies."""
    await wire_ha_to_satellite(**ENGINES)
    proc = await asyncio.create_subprocess_exec(
        ffmpeg_setup, "-version", stdout=asyncio.subprocess.PIPE
    )
    ffmpeg_version = (await proc.communicate())[0].decode().split(" Copyright")[0]
    pcm = speech("turn_on_kitchen_light")
    lines = [
        f"ha={HA_VERSION} satellite=wyoming ffmpeg={ffmpeg_version.removeprefix('ffmpeg version ')}"
    ]
    for kind, reply in REPLIES.items():
        assert (len(reply) > 60) == (kind == "long")
        added: list[float] = []
        eos: list[float] = []
        for _ in range(RUNS + 1):  # the first run warms up (imports, first ffmpeg spawn)
            emulator.config.scenario = Scenario.from_dict(
                {"turns": [{"match": "audio", "transcript": "bench", "steps": [{"say": reply}]}]}
            )
            result = await satellite.run_pipeline(pcm, realtime=True, run_timeout=30)
            assert not result.errors, result.summary()
            assert result.first_audio_at is not None
            assert result.speech_end_sent_at is not None
            sent = max(
                (
                    at
                    for c in emulator.connections
                    if (at := c.first_audio_sent_at(after=result.started_at)) is not None
                ),
                default=None,
            )
            assert sent is not None
            added.append((result.first_audio_at - sent) * 1000)
            eos.append((result.first_audio_at - result.speech_end_sent_at) * 1000 - SILENCE_MS)
        added, eos = added[1:], eos[1:]
        lines.append(
            f"ha={HA_VERSION} satellite=wyoming reply={kind} "
            f"added_ms p50={statistics.median(added):.1f} p95={_pct(added, 95):.1f} "
            f"eos_ms p50={statistics.median(eos):.1f} p95={_pct(eos, 95):.1f}"
        )
    print("\n" + "\n".join(lines), flush=True)
