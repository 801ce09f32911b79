"""N simultaneous satellites through one Home Assistant (prints numbers; not collected by the
test run: pytest collects ``test_*.py`` only).

Run: ``pytest -q -s -p no:cacheprovider --no-cov tests/voice/bench_satellites.py``
(``scripts/bench satellites``; ``tests/esphome/bench_esphome_satellites.py`` is the same with
ESPHome Voice PEs). ``BENCH_SATELLITES=1,5,10`` sets the satellite counts, ``BENCH_RUNS``
(default 10) the runs per count; the first run of each count warms up and is not counted.

One HA, one Gemini Live entry with one agent (as a home with N satellites has it), one pipeline
(our STT, agent and TTS) selected on every satellite. Each satellite is a real Wyoming peer
(:class:`devtools.wyoming_satellite.FakeSatellite`) with its own wyoming config entry. In each
run all N satellites start at the same moment and stream the spoken WAV in real time; the Live
emulator (instant answers, audio paced in real time in the real server's 200-240 ms chunks)
answers each with the long reply (HA streams it to TTS).

The emulator and the satellites run in processes of their own (``devtools.bench_peers``), as
the service and the satellites are other machines: in HA's process, even in another thread
(one GIL), their work (VAD over every microphone chunk, pacing N reply streams, N real-time
microphones) would be counted as HA's event-loop lag and added latency.

- ``added_ms``: per satellite per run, the emulator wrote its first reply audio frame on that
  satellite's Live session -> the satellite got its first reply audio chunk (everything our
  bridge and HA add). Sessions are matched to satellites by transcript: each utterance gets its
  own (``bench <k>``), which the emulator records on the connection and HA tells the satellite.
- ``eos_ms``: the satellite sent its last speech chunk -> first reply audio chunk, minus the
  emulator's end-of-speech window.
- ``loop_lag_ms``: how late a 20 ms ticker task in HA's event loop woke up, during the runs.

One line per count, ``ha=<version> satellite=wyoming satellites=N added_ms p50=.. p95=..
eos_ms p50=.. p95=.. loop_lag_ms p99=.. max=..``, then ``p95_ratio_<max>_vs_<min>=R`` (the
added_ms p95 of the most satellites over that of the fewest).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
import os
import re
import statistics
import time

from homeassistant.const import __version__ as HA_VERSION
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from devtools.bench_peers import RemoteEmulator, RemoteSatellite, RemoteSatellites
from devtools.ha_voice import (
    add_wyoming_satellite,
    create_pipeline,
    remove_wyoming_satellite,
    use_pipeline,
)
from live_emulator import EmulatorConfig

from ..conftest import TEST_API_KEY
from .bench_voice import ENGINES, enable_event_loop_debug  # noqa: F401 - a fixture

RUNS = int(os.environ.get("BENCH_RUNS", "10"))
COUNTS = sorted({int(n) for n in os.environ.get("BENCH_SATELLITES", "1,5,10").split(",")})
SILENCE_MS = 500  # the emulator's end-of-speech window (no silenceDurationMs in the setup)
TICK_S = 0.020
REPLY = (
    "Sure. I turned on the kitchen light for you, and the living room lamp is still on "
    "as well, in case you were wondering."
)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Instant answers, audio paced in real time in the real server's chunk sizes."""
    return EmulatorConfig(
        api_keys=frozenset({TEST_API_KEY}), pace=1.0, default_silence_ms=SILENCE_MS
    )


@pytest.fixture
async def emulator(
    emulator_config: EmulatorConfig, socket_enabled: None
) -> AsyncIterator[RemoteEmulator]:
    """The Live emulator in a process of its own."""
    async with RemoteEmulator(emulator_config) as emu:
        yield emu


def _pct(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _bench_index(text: str | None) -> int | None:
    match = re.search(r"\d+", text or "")
    return int(match[0]) if match else None


async def _ticker(lags: list[float]) -> None:
    """Record how late (ms) each 20 ms tick of the running loop comes."""
    loop = asyncio.get_running_loop()
    due = loop.time() + TICK_S
    while True:
        await asyncio.sleep(max(0.0, due - loop.time()))
        now = loop.time()
        lags.append((now - due) * 1000)
        due = now + TICK_S


async def bench_satellites(
    hass: HomeAssistant,
    emulator: RemoteEmulator,
    satellites: RemoteSatellites,
    pcm: bytes,
    wire: Callable[[RemoteSatellite], Awaitable[None]],
) -> None:
    """For each count, add satellites (each wired to our pipeline by ``await wire(sat)``) up
    to it, run them all at once ``RUNS + 1`` times and print the line; then the ratio line."""
    label = satellites.kind
    p95: dict[int, float] = {}
    for count in COUNTS:
        while len(satellites.added) < count:
            await wire(await satellites.add())
        added: list[float] = []
        eos: list[float] = []
        lags: list[float] = []
        for run in range(RUNS + 1):  # the first run warms up
            run_added, run_eos, run_lags = await _run_once(hass, emulator, satellites, count, pcm)
            if run:
                added += run_added
                eos += run_eos
                lags += run_lags
        p95[count] = _pct(added, 95)
        print(
            f"ha={HA_VERSION} satellite={label} satellites={count} "
            f"added_ms p50={statistics.median(added):.1f} p95={p95[count]:.1f} "
            f"eos_ms p50={statistics.median(eos):.1f} p95={_pct(eos, 95):.1f} "
            f"loop_lag_ms p99={_pct(lags, 99):.1f} max={max(lags):.1f}",
            flush=True,
        )
    lo, hi = COUNTS[0], COUNTS[-1]
    print(
        f"ha={HA_VERSION} satellite={label} p95_ratio_{hi}_vs_{lo}={p95[hi] / p95[lo]:.2f}",
        flush=True,
    )


@pytest.mark.timeout(0)  # a benchmark, not a test: BENCH_RUNS decides how long it takes
async def test_bench_satellites(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    emulator: RemoteEmulator,
    speech: Callable[[str], bytes],
) -> None:
    """N Wyoming satellites: print added/eos latency and HA's loop lag per N."""
    pipeline_id = await create_pipeline(hass, name="Gemini Live", **ENGINES)
    async with (
        RemoteSatellites("wyoming") as satellites,
        contextlib.AsyncExitStack() as stack,  # HA lets go of the satellites before they stop
    ):

        async def wire(sat: RemoteSatellite) -> None:
            entry = await add_wyoming_satellite(hass, sat)  # type: ignore[arg-type]
            stack.push_async_callback(remove_wyoming_satellite, hass, entry)
            await use_pipeline(hass, entry, pipeline_id)

        await bench_satellites(hass, emulator, satellites, speech("turn_on_kitchen_light"), wire)


async def _run_once(
    hass: HomeAssistant,
    emulator: RemoteEmulator,
    satellites: RemoteSatellites,
    count: int,
    pcm: bytes,
) -> tuple[list[float], list[float], list[float]]:
    """The first ``count`` satellites speak at once; return (added_ms, eos_ms, loop lags)."""
    await emulator.set_scenario(
        {
            "turns": [
                {"match": "audio", "transcript": f"bench {k}", "steps": [{"say": REPLY}]}
                for k in range(count)
            ]
        }
    )
    lags: list[float] = []
    ticker = hass.async_create_background_task(_ticker(lags), "bench loop ticker")
    started = time.perf_counter()
    try:
        results = await satellites.run_all(count, pcm, run_timeout=60)
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
    for result in results:
        assert result.ok, result.summary
    # The emulator's first reply frame per utterance transcript ("bench <k>").
    sent_by_index: dict[int, float] = {}
    for transcript, at in (await emulator.first_audio_by_transcript(started)).items():
        index = _bench_index(transcript)
        assert index is not None, transcript
        sent_by_index[index] = at
    assert len(sent_by_index) == count, (sent_by_index, [r.summary for r in results])
    added: list[float] = []
    eos: list[float] = []
    for result in results:
        assert result.first_audio_at is not None, result.summary
        assert result.speech_end_sent_at is not None, result.summary
        index = _bench_index(result.transcript)
        assert index is not None, result.summary
        added.append((result.first_audio_at - sent_by_index[index]) * 1000)
        eos.append((result.first_audio_at - result.speech_end_sent_at) * 1000 - SILENCE_MS)
    return added, eos, lags
