"""Fixtures: a simulated Voice PE on the real ESPHome native API, wired into HA's esphome.

- ``disable_http_server`` is overridden: HA's HTTP server really listens (on 127.0.0.1, a free
  port, see devtools.ha_esphome.serve_http), because the device fetches its replies over HTTP;
- zeroconf and bluetooth (esphome's dependencies) are mocked by phcc's fixtures;
- ``ffmpeg_setup`` (autouse): HA's ffmpeg is imageio-ffmpeg's binary (CI has no system ffmpeg),
  set up before anything sets it up with the PATH default; the TTS file cache goes to tmp_path;
- ``voice_pe``: a started, Noise-encrypted :class:`EsphomeSatellite` with a Voice PE's feature
  flags; ``wire``: ``await wire(device)`` adds a device through the esphome config flow and
  selects the ``pipeline_id`` pipeline (our STT, agent and TTS) for it, unloading at teardown;
- ``speech``: 16 kHz PCM of ``tests/fixtures/speech/<name>.wav``; ``decode``: any reply body
  (FLAC, WAV, MP3) to 16 kHz mono PCM16 with HA's ffmpeg.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock, patch

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
import numpy as np
import pytest

from devtools.esphome_satellite import EsphomeSatellite
from devtools.ha_esphome import (
    EsphomeWiring,
    remove_esphome_satellite,
    serve_http,
    wire_esphome_satellite,
)
from devtools.ha_voice import setup_ffmpeg
from devtools.wyoming_satellite import load_wav_pcm16k

SPEECH_DIR = Path(__file__).parent.parent / "fixtures" / "speech"


@pytest.fixture
def disable_http_server() -> None:
    """Let HA's HTTP server bind and serve (phcc patches it out by default)."""


@pytest.fixture(autouse=True)
def esphome_network_mocks(
    http_server: str, mock_async_zeroconf: MagicMock, enable_bluetooth: None
) -> None:
    """No multicast, no Bluetooth adapter: phcc's zeroconf and bluetooth mocks.

    After ``http_server``: bluetooth pulls ``http`` in (through usb on HA 2026.11), which
    would otherwise listen on 8123 on every interface.
    """


@pytest.fixture
def expected_lingering_timers() -> bool:
    """HA's esphome reconnect logic and tts leave timers behind."""
    return True


@pytest.fixture(autouse=True)
def tts_cache_dir(tmp_path: Path) -> Iterator[Path]:
    """Keep HA's TTS file cache out of phcc's shared testing_config directory."""
    cache = tmp_path / "tts"
    cache.mkdir()
    with patch("homeassistant.components.tts._init_tts_cache_dir", return_value=str(cache)):
        yield cache


@pytest.fixture(autouse=True)
async def ffmpeg_setup(hass: HomeAssistant, setup_homeassistant: None) -> str:
    """HA's ffmpeg integration with imageio-ffmpeg's binary; returns its path."""
    return await setup_ffmpeg(hass)


@pytest.fixture(autouse=True)
async def http_server(
    hass: HomeAssistant, ffmpeg_setup: str, disable_http_server: None, socket_enabled: None
) -> str:
    """HA's HTTP server on 127.0.0.1 (free port), before anything sets http up on 8123."""
    return await serve_http(hass)


@pytest.fixture
def speech() -> Callable[[str], bytes]:
    """Return a loader: ``speech("turn_on_kitchen_light")`` -> 16 kHz s16 mono PCM."""

    def _load(name: str) -> bytes:
        return load_wav_pcm16k(str(SPEECH_DIR / f"{name}.wav"))

    return _load


@pytest.fixture
def decode(ffmpeg_setup: str) -> Callable[[bytes], Awaitable[np.ndarray]]:
    """Return ``await decode(body)``: any audio body -> 16 kHz mono int16 samples."""

    async def _decode(body: bytes) -> np.ndarray:
        proc = await asyncio.create_subprocess_exec(
            ffmpeg_setup,
            *("-hide_banner", "-loglevel", "error", "-i", "pipe:0"),
            *("-f", "s16le", "-ac", "1", "-ar", "16000", "pipe:1"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(body)
        assert proc.returncode == 0, err.decode()
        return np.frombuffer(out, dtype="<i2")

    return _decode


@pytest.fixture
async def voice_pe(socket_enabled: None) -> AsyncIterator[EsphomeSatellite]:
    """A started Voice PE (Noise-encrypted, Voice PE feature flags) on 127.0.0.1."""
    async with EsphomeSatellite(noise_psk=EsphomeSatellite.new_psk()) as device:
        yield device


@pytest.fixture
async def wire(
    hass: HomeAssistant, pipeline_id: str
) -> AsyncIterator[Callable[..., Awaitable[EsphomeWiring]]]:
    """Return ``await wire(device)``: add it to HA with our pipeline; unloaded at teardown."""
    entries: list[ConfigEntry] = []

    async def _wire(device: EsphomeSatellite, **kwargs: Any) -> EsphomeWiring:
        wiring = await wire_esphome_satellite(hass, device, pipeline_id, **kwargs)
        entries.append(wiring.entry)
        return wiring

    yield _wire
    for entry in entries:
        await remove_esphome_satellite(hass, entry)


def loud(samples: np.ndarray) -> int:
    """Peak of int16 samples."""
    return int(np.abs(samples.astype(np.int32)).max()) if len(samples) else 0
