"""Fixtures for voice tests: a real Wyoming satellite peer wired into HA's wyoming integration.

Reusable pieces:
- ``satellite``: a started :class:`devtools.wyoming_satellite.FakeSatellite` (127.0.0.1, free
  port), stopped (server closed, handlers awaited) at teardown;
- ``ffmpeg_setup`` (autouse): HA's ffmpeg pointed at imageio-ffmpeg's binary (CI has no
  system ffmpeg), set up before anything else can set it up with the PATH default;
- ``wire_ha_to_satellite``: ``await wire(stt_engine=..., tts_engine=..., conversation_engine=...)``
  adds the satellite via the wyoming config flow, creates + selects a pipeline, and unloads
  the entry at teardown (before the satellite stops);
- ``fake_engines``: a tiny ``test`` integration with an STT entity (fixed transcripts, ends
  the utterance after 300 ms of silence), a TTS entity (a float32 WAV tone, optionally held
  half-way by a gate) and a "Kitchen light" for HA's default agent;
- ``speech``: PCM of ``tests/fixtures/speech/<name>.wav``;
- ``tolerate_wyoming_disconnect_errors``: opt-in; swallows (and lists) the unretrieved
  ConnectionErrors HA 2026.10.4's wyoming satellite tasks die with when a satellite drops
  while HA still streams a reply (phcc would fail the test on them);
- ``expected_lingering_timers`` is True here (HA's wyoming/tts leave timers behind), and the
  TTS file cache goes to ``tmp_path``.
"""

from __future__ import annotations

import array
import asyncio
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
)
from dataclasses import dataclass, field
import gc
import math
from pathlib import Path
import struct
from typing import Any
from unittest.mock import patch

from homeassistant.components import stt, tts
from homeassistant.components.light import LightEntity
from homeassistant.components.light.const import ColorMode
from homeassistant.components.stt.models import SpeechAudioProcessing
from homeassistant.components.tts.entity import TTSAudioRequest
from homeassistant.config_entries import ConfigEntry, ConfigFlow
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import (  # type: ignore[import-untyped]
    MockConfigEntry,
    MockModule,
    mock_config_flow,
    mock_integration,
    mock_platform,
    setup_test_component_platform,
)

from devtools.ha_voice import (
    SatelliteWiring,
    remove_wyoming_satellite,
    setup_ffmpeg,
    wire_satellite,
)
from devtools.wyoming_satellite import FakeSatellite, load_wav_pcm16k
from tests.ha_compat import entry_method_result

SPEECH_DIR = Path(__file__).parent.parent / "fixtures" / "speech"
TEST_DOMAIN = "test"


@pytest.fixture
def expected_lingering_timers() -> bool:
    """HA's wyoming satellite and tts leave timers (ping delay, TTS timeout, cache cleanup)."""
    return True


@pytest.fixture(autouse=True)
def tts_cache_dir(tmp_path: Path) -> Iterator[Path]:
    """Keep HA's TTS file cache out of phcc's shared testing_config directory."""
    cache = tmp_path / "tts"
    cache.mkdir()
    with patch("homeassistant.components.tts._init_tts_cache_dir", return_value=str(cache)):
        yield cache


@pytest.fixture
async def tolerate_wyoming_disconnect_errors(
    hass: HomeAssistant,
) -> AsyncIterator[list[BaseException]]:
    """Swallow HA wyoming's satellite tasks dying on a dropped satellite; yield what was swallowed.

    HA 2026.10.4, when a satellite drops while a reply is streaming: ``_stream_tts`` writes
    the rest to the dead connection and dies with ConnectionResetError; the stale client is
    left broken, so ``run()``'s teardown ``_disconnect()`` (on unload/reload during the 3 s
    restart delay) dies with BrokenPipeError. Both are unretrieved task exceptions, which
    phcc's ``hass`` fixture turns into test failures. Only ConnectionErrors from
    ``WyomingAssistSatellite`` coroutines are swallowed; everything else still fails.
    """
    loop = asyncio.get_running_loop()
    inner = loop.get_exception_handler()
    swallowed: list[BaseException] = []

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        task = context.get("future")
        if (
            isinstance(exc, ConnectionError)
            and isinstance(task, asyncio.Task)
            and getattr(task.get_coro(), "__qualname__", "").startswith("WyomingAssistSatellite.")
        ):
            swallowed.append(exc)
            return
        if inner is None:
            loop.default_exception_handler(context)
        else:
            inner(loop, context)

    loop.set_exception_handler(handler)
    yield swallowed
    gc.collect()  # report any such task now, while this handler is installed
    # The handler stays installed: HA may still drop such a task while it shuts down.


@pytest.fixture
def speech() -> Callable[[str], bytes]:
    """Return a loader: ``speech("turn_on_kitchen_light")`` -> 16 kHz s16 mono PCM."""

    def _load(name: str) -> bytes:
        return load_wav_pcm16k(str(SPEECH_DIR / f"{name}.wav"))

    return _load


@pytest.fixture(autouse=True)
async def ffmpeg_setup(hass: HomeAssistant, setup_homeassistant: None) -> str:
    """HA's ffmpeg integration, using imageio-ffmpeg's binary; returns its path.

    Autouse: it must come before anything that sets ffmpeg up with the PATH default (tts,
    wyoming, an integration with a TTS entity).
    """
    return await setup_ffmpeg(hass)


@pytest.fixture
async def satellite(socket_enabled: None) -> AsyncIterator[FakeSatellite]:
    """A started fake Wyoming satellite on 127.0.0.1 (free port)."""
    async with FakeSatellite(name="Test satellite") as sat:
        yield sat


@pytest.fixture
async def wire_ha_to_satellite(
    hass: HomeAssistant, satellite: FakeSatellite, ffmpeg_setup: str
) -> AsyncIterator[Callable[..., Awaitable[SatelliteWiring]]]:
    """Return ``wire(**kwargs)`` (see devtools.ha_voice.wire_satellite); unloads at teardown."""
    entries: list[ConfigEntry] = []

    async def _wire(**kwargs: Any) -> SatelliteWiring:
        wiring = await wire_satellite(hass, satellite, **kwargs)
        entries.append(wiring.entry)
        return wiring

    yield _wire
    for entry in entries:
        await remove_wyoming_satellite(hass, entry)


# -- a minimal STT / TTS / light integration ("test" domain) ------------------------------------


def _loudest(pcm: bytes) -> int:
    samples = array.array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    return max((abs(s) for s in samples), default=0)


class FakeSTT(stt.SpeechToTextEntity):
    """Returns the next queued transcript once the speech is followed by 300 ms of silence.

    Declares ``requires_external_vad=False``, so HA streams until this entity stops reading.
    """

    _attr_name = "Fake STT"
    _attr_unique_id = "fake_stt"
    end_silence_ms = 300
    threshold = 300

    def __init__(self) -> None:
        """Create the entity with no queued transcripts (default: the kitchen light)."""
        self.transcripts: deque[str] = deque()
        self.default_transcript = "turn on the kitchen light"
        self.bytes_received: list[int] = []
        self.chunk_sizes: set[int] = set()

    @property
    def supported_languages(self) -> list[str]:
        """English only."""
        return ["en"]

    @property
    def supported_formats(self) -> list[stt.AudioFormats]:
        """WAV."""
        return [stt.AudioFormats.WAV]

    @property
    def supported_codecs(self) -> list[stt.AudioCodecs]:
        """PCM."""
        return [stt.AudioCodecs.PCM]

    @property
    def supported_bit_rates(self) -> list[stt.AudioBitRates]:
        """16-bit."""
        return [stt.AudioBitRates.BITRATE_16]

    @property
    def supported_sample_rates(self) -> list[stt.AudioSampleRates]:
        """16 kHz."""
        return [stt.AudioSampleRates.SAMPLERATE_16000]

    @property
    def supported_channels(self) -> list[stt.AudioChannels]:
        """Mono."""
        return [stt.AudioChannels.CHANNEL_MONO]

    @property
    def audio_processing(self) -> SpeechAudioProcessing:
        """The entity finds the end of speech itself."""
        return SpeechAudioProcessing(
            requires_external_vad=False,
            prefers_auto_gain_enabled=False,
            prefers_noise_reduction_enabled=False,
        )

    async def async_process_audio_stream(
        self, metadata: stt.SpeechMetadata, stream: AsyncIterable[bytes]
    ) -> stt.SpeechResult:
        """Consume the stream until speech + end_silence_ms of silence (or its end)."""
        total = 0
        voiced = False
        silent_bytes = 0
        end_bytes = 32 * self.end_silence_ms
        async for chunk in stream:
            total += len(chunk)
            self.chunk_sizes.add(len(chunk))
            if _loudest(chunk) > self.threshold:
                voiced, silent_bytes = True, 0
            elif voiced:
                silent_bytes += len(chunk)
                if silent_bytes >= end_bytes:
                    break
        self.bytes_received.append(total)
        text = self.transcripts.popleft() if self.transcripts else self.default_transcript
        return stt.SpeechResult(text, stt.SpeechResultState.SUCCESS)


def float32_wav(samples: list[float], rate: int) -> tuple[bytes, bytes]:
    """Return (44-byte WAV header with format tag 3, float32 little-endian frames).

    Float WAVs reach HA's ffmpeg conversion without its 64 KiB PCM-s16 read-ahead.
    """
    data = struct.pack(f"<{len(samples)}f", *samples)
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 3, 1, rate, rate * 4, 4, 32)
    header += b"data" + struct.pack("<I", len(data))
    return header, data


class FakeTTS(tts.TextToSpeechEntity):
    """Speaks every message as a ``reply_seconds`` 440 Hz tone (16 kHz float32 WAV).

    The second half of each reply waits for the ``gate`` current when the reply started
    (open by default): :meth:`hold` holds the following replies "mid-air" (barge-in,
    disconnect tests) until the returned event is set. Each message is recorded.
    """

    _attr_name = "Fake TTS"
    _attr_unique_id = "fake_tts"
    _attr_default_language = "en"
    _attr_supported_languages = ["en"]  # noqa: RUF012
    rate = 16000
    reply_seconds = 1.0

    def __init__(self) -> None:
        """Create the entity with an open gate."""
        self.gate = asyncio.Event()
        self.gate.set()
        self.messages: list[str] = []

    def hold(self) -> asyncio.Event:
        """Hold the second half of the following replies until the returned event is set."""
        self.gate = asyncio.Event()
        return self.gate

    def stop_holding(self) -> None:
        """Let the following replies through (replies already held stay held)."""
        self.gate = asyncio.Event()
        self.gate.set()

    async def async_stream_tts_audio(self, request: TTSAudioRequest) -> tts.TTSAudioResponse:
        """Return the tone, streamed in two halves."""
        message = "".join([part async for part in request.message_gen])
        self.messages.append(message)
        n = int(self.rate * self.reply_seconds)
        tone = [0.3 * math.sin(2 * math.pi * 440 * i / self.rate) for i in range(n)]
        header, data = float32_wav(tone, self.rate)
        half = (n // 2) * 4
        gate = self.gate

        async def data_gen() -> AsyncGenerator[bytes]:
            yield header
            yield data[:half]
            async with asyncio.timeout(15):
                await gate.wait()
            yield data[half:]

        return tts.TTSAudioResponse("wav", data_gen())


class KitchenLight(LightEntity):
    """An on/off light named "Kitchen light" for HA's default conversation agent."""

    _attr_name = "Kitchen light"
    _attr_unique_id = "kitchen_light"
    _attr_should_poll = False
    _attr_color_mode = ColorMode.ONOFF
    _attr_supported_color_modes = {ColorMode.ONOFF}  # noqa: RUF012
    _attr_is_on = False

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Turn on."""
        self._attr_is_on = True
        self.async_write_ha_state()

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Turn off."""
        self._attr_is_on = False
        self.async_write_ha_state()


@dataclass
class FakeEngines:
    """The ``test`` integration's entities, set up."""

    stt: FakeSTT
    tts: FakeTTS
    light: KitchenLight
    entry: MockConfigEntry
    platforms: list[Platform] = field(default_factory=list)

    @property
    def stt_entity_id(self) -> str:
        """The STT entity id."""
        assert self.stt.entity_id
        return self.stt.entity_id

    @property
    def tts_entity_id(self) -> str:
        """The TTS entity id."""
        assert self.tts.entity_id
        return self.tts.entity_id


class _TestFlow(ConfigFlow):
    """Config flow handler the ``test`` domain needs for its entry to set up."""

    VERSION = 1


@pytest.fixture
async def fake_engines(hass: HomeAssistant, ffmpeg_setup: str) -> AsyncIterator[FakeEngines]:
    """Set up the ``test`` integration: FakeSTT, FakeTTS and a Kitchen light."""
    platforms = [Platform.STT, Platform.TTS, Platform.LIGHT]

    async def async_setup_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool | None:
        await hass.config_entries.async_forward_entry_setups(entry, platforms)
        return entry_method_result()

    async def async_unload_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool | None:
        assert await hass.config_entries.async_unload_platforms(entry, platforms)
        return entry_method_result()

    mock_integration(
        hass,
        MockModule(
            TEST_DOMAIN,
            async_setup_entry=async_setup_entry,
            async_unload_entry=async_unload_entry,
        ),
    )
    engines = FakeEngines(
        stt=FakeSTT(),
        tts=FakeTTS(),
        light=KitchenLight(),
        entry=MockConfigEntry(domain=TEST_DOMAIN),
        platforms=platforms,
    )
    mock_platform(hass, f"{TEST_DOMAIN}.config_flow")
    setup_test_component_platform(hass, "stt", [engines.stt], from_config_entry=True)
    setup_test_component_platform(hass, "tts", [engines.tts], from_config_entry=True)
    setup_test_component_platform(hass, "light", [engines.light], from_config_entry=True)
    with mock_config_flow(TEST_DOMAIN, _TestFlow):
        engines.entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(engines.entry.entry_id)
        await hass.async_block_till_done()
        yield engines
