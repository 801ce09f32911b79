"""gemini_live.announce and later replies: Live audio streamed to media players/satellites."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from homeassistant.components.media_player import (
    MediaPlayerEntity,
    MediaPlayerEntityFeature,
    MediaPlayerState,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockPlatform,
    mock_platform,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.gemini_live.const import DOMAIN
from live_emulator import LiveEmulator

from .conftest import agent_data
from .ha_compat import HAS_AUDIO_STREAMS
from .voice_helpers import run_voice, tone
from .wav_tools import parse_wav


class _Speaker(MediaPlayerEntity):
    """A media player that records what it is asked to play."""

    _attr_name = "Kitchen speaker"
    _attr_unique_id = "kitchen_speaker"
    _attr_state = MediaPlayerState.IDLE
    _attr_supported_features = (
        MediaPlayerEntityFeature.PLAY_MEDIA | MediaPlayerEntityFeature.MEDIA_ANNOUNCE
    )

    def __init__(self) -> None:
        self.played: list[tuple[str, str, dict[str, Any]]] = []
        self.got_media = asyncio.Event()

    async def async_play_media(self, media_type: str, media_id: str, **kwargs: Any) -> None:
        self.played.append((media_type, media_id, kwargs))
        self.got_media.set()


@pytest.fixture
async def speaker(hass: HomeAssistant) -> _Speaker:
    """media_player.kitchen_speaker."""
    entity = _Speaker()

    async def _setup(hass: HomeAssistant, config: Any, add: Any, info: Any = None) -> None:
        add([entity])

    mock_platform(hass, "test.media_player", MockPlatform(async_setup_platform=_setup))
    assert await async_setup_component(hass, "media_player", {"media_player": {"platform": "test"}})
    await hass.async_block_till_done()
    return entity


async def _fetch(hass_client: ClientSessionGenerator, url: str) -> bytes:
    client = await hass_client()
    parts = urlsplit(url)
    resp = await client.get(parts.path + (f"?{parts.query}" if parts.query else ""))
    assert resp.status == 200
    assert resp.headers["Content-Type"] in ("audio/wav", "audio/x-wav")
    return await resp.read()


async def test_announce_on_media_player(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    speaker: _Speaker,
    emulator: LiveEmulator,
    hass_client: ClientSessionGenerator,
) -> None:
    """The action streams Gemini's spoken answer to the media player's URL."""
    result = await hass.services.async_call(
        DOMAIN,
        "announce",
        {
            "agent": "conversation.gemini_live",
            "prompt": "tell everyone dinner is ready",
            "targets": ["media_player.kitchen_speaker"],
        },
        blocking=True,
        return_response=True,
    )
    assert result is not None
    assert "dinner is ready" in str(result["text"]).lower()
    [(media_type, url, kwargs)] = speaker.played
    assert media_type == "music"
    assert kwargs.get("announce") is True
    # HA's own audio-stream URL where HA has the API (2026.11+), else ours.
    stream_path = "/api/tts_proxy/" if HAS_AUDIO_STREAMS else "/api/gemini_live/stream/"
    assert stream_path in url
    wav = parse_wav(await _fetch(hass_client, url))
    assert (wav.rate, wav.channels, wav.sample_width) == (24000, 1, 2)
    assert len(wav.pcm) > 24000  # > 0.5 s of real speech audio
    assert max(wav.pcm[1::2]) > 10  # not silence
    # Unknown tokens are refused.
    client = await hass_client()
    assert (await client.get(f"{stream_path}nope.wav")).status == 404


async def test_announce_validates_targets(
    hass: HomeAssistant, setup_integration: MockConfigEntry
) -> None:
    """Bad agents and targets get clear, translated errors."""
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "announce",
            {"agent": "conversation.home_assistant", "prompt": "x", "targets": ["light.x"]},
            blocking=True,
        )
    assert err.value.translation_key == "not_an_agent"
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "announce",
            {"agent": "conversation.gemini_live", "prompt": "x", "targets": ["light.x"]},
            blocking=True,
        )
    assert err.value.translation_key == "bad_target"
    # A satellite that cannot announce (no ANNOUNCE feature), and a player that does not exist.
    hass.states.async_set("assist_satellite.mute_box", "idle", {"supported_features": 0})
    for target in ("assist_satellite.mute_box", "media_player.nowhere"):
        with pytest.raises(ServiceValidationError) as err:
            await hass.services.async_call(
                DOMAIN,
                "announce",
                {"agent": "conversation.gemini_live", "prompt": "x", "targets": [target]},
                blocking=True,
            )
        assert err.value.translation_key == "cannot_play"


LATER = agent_data(success_scheduling="WHEN_IDLE", announce_target="media_player.kitchen_speaker")


@pytest.mark.parametrize("agent_options", [LATER])
async def test_later_reply_is_announced(
    hass: HomeAssistant,
    kitchen_light: str,
    speaker: _Speaker,
    pipeline_id: str,
    emulator: LiveEmulator,
    hass_client: ClientSessionGenerator,
) -> None:
    """A WHEN_IDLE result spoken after the voice run ended plays on the chosen media player."""
    emulator.queue_transcripts("turn on the kitchen light")
    await run_voice(hass, pipeline_id, tone(0.8))
    assert hass.states.get(kitchen_light).state == "on"
    async with asyncio.timeout(10):
        await speaker.got_media.wait()
    [(_type, url, _kwargs)] = speaker.played
    wav = parse_wav(await _fetch(hass_client, url))
    assert len(wav.pcm) > 24000
    record = emulator.connections[-1].tool_responses[0]
    assert record.scheduling == "WHEN_IDLE"
