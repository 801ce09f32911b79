"""A Voice PE (simulated, real ESPHome native API) through HA's esphome integration and our bridge."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from homeassistant.core import HomeAssistant
import numpy as np

from devtools.esphome_satellite import EsphomeSatellite
from devtools.ha_esphome import EsphomeWiring
from live_emulator import LiveEmulator

from .conftest import loud


async def test_spoken_request_turns_on_the_light(
    hass: HomeAssistant,
    kitchen_light: str,
    voice_pe: EsphomeSatellite,
    wire: Callable[..., Awaitable[EsphomeWiring]],
    emulator: LiveEmulator,
    speech: Callable[[str], bytes],
    decode: Callable[[bytes], Awaitable[np.ndarray]],
) -> None:
    """Wake word + spoken request: the light turns on and the reply plays from its URL."""
    await wire(voice_pe)
    emulator.queue_transcripts("turn on the kitchen light")
    result = await voice_pe.run(speech("turn_on_kitchen_light"), realtime=False)
    print(result.summary())
    assert result.ok, result.summary()
    assert hass.states.get(kitchen_light).state == "on"
    assert result.playback is not None
    samples = await decode(result.playback.body)
    assert loud(samples) > 1000
