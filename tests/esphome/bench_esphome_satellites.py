"""N simultaneous ESPHome Voice PEs through one Home Assistant (prints numbers; not collected).

Run: ``pytest -q -s -p no:cacheprovider --no-cov tests/esphome/bench_esphome_satellites.py``
(``scripts/bench satellites``; ``BENCH_SATELLITES``, ``BENCH_RUNS`` as for the Wyoming one).

As ``tests/voice/bench_satellites.py`` (same measures, same line format with
``satellite=esphome``), with simulated Voice PEs (Noise-encrypted native API, each its own
esphome config entry, all in one process of their own) and HA's real esphome integration: each
device GETs its reply URL from HA's HTTP server (FLAC 48 kHz) and ``added_ms`` ends at the
first FLAC audio byte it receives.
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib

from homeassistant.core import HomeAssistant
import pytest

from devtools.bench_peers import RemoteEmulator, RemoteSatellite, RemoteSatellites
from devtools.ha_esphome import remove_esphome_satellite, wire_esphome_satellite

from ..voice.bench_satellites import (  # noqa: F401 - fixtures
    bench_satellites,
    emulator,
    emulator_config,
    enable_event_loop_debug,
)


@pytest.mark.timeout(0)  # a benchmark, not a test: BENCH_RUNS decides how long it takes
async def test_bench_esphome_satellites(
    hass: HomeAssistant,
    pipeline_id: str,
    emulator: RemoteEmulator,  # noqa: F811 - the fixture imported above
    speech: Callable[[str], bytes],
) -> None:
    """N Voice PEs: print added/eos latency and HA's loop lag per N."""
    async with (
        RemoteSatellites("esphome") as satellites,
        contextlib.AsyncExitStack() as stack,  # HA lets go of the satellites before they stop
    ):

        async def wire(device: RemoteSatellite) -> None:
            wiring = await wire_esphome_satellite(hass, device, pipeline_id)  # type: ignore[arg-type]
            stack.push_async_callback(remove_esphome_satellite, hass, wiring.entry)

        await bench_satellites(hass, emulator, satellites, speech("turn_on_kitchen_light"), wire)
