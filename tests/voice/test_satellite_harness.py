"""The satellite harness against HA's real wyoming integration (without our integration).

A FakeSatellite (real Wyoming peer on 127.0.0.1) is added through the wyoming config flow;
its pipeline is FakeSTT -> HA's default conversation agent -> FakeTTS (see conftest.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from homeassistant.core import HomeAssistant
import pytest
from wyoming.pipeline import PipelineStage

from devtools.ha_voice import SatelliteWiring
from devtools.wyoming_satellite import AudioFormatInfo, FakeSatellite, RunResult

from .conftest import FakeEngines

Wire = Callable[..., Awaitable[SatelliteWiring]]

REPLY_FORMAT = AudioFormatInfo(rate=22050, width=2, channels=1)  # HA converts for wyoming


@pytest.fixture
async def wired(fake_engines: FakeEngines, wire_ha_to_satellite: Wire) -> SatelliteWiring:
    """The satellite, added to HA, using FakeSTT -> default agent -> FakeTTS."""
    return await wire_ha_to_satellite(
        stt_engine=fake_engines.stt_entity_id, tts_engine=fake_engines.tts_entity_id
    )


def assert_complete_reply(result: RunResult, reply_seconds: float = 1.0) -> None:
    """The run got its transcript and a whole reply, in protocol order."""
    assert result.ok, result.summary()
    assert result.audio_format == REPLY_FORMAT
    assert result.reply_seconds == pytest.approx(reply_seconds, abs=0.05)
    assert len(result.reply_pcm) % 2 == 0
    types = result.event_types_compact()
    assert types[:3] == ["transcribe", "transcript", "synthesize"], types
    assert types[3] == "audio-start", types
    assert types[4].startswith("audio-chunk x"), types
    assert types[5:] == ["audio-stop"], types
    assert result.played_sent


async def test_wiring(
    hass: HomeAssistant, wired: SatelliteWiring, satellite: FakeSatellite
) -> None:
    """The flow created a satellite entity + pipeline select; HA sent run-satellite."""
    assert wired.satellite_entity_id.startswith("assist_satellite.")
    assert hass.states.get(wired.satellite_entity_id) is not None
    select = hass.states.get(wired.pipeline_select_entity_id)
    assert select is not None
    assert select.state == "Satellite test pipeline"
    assert satellite.connected
    assert satellite.satellite_connection_count == 1
    assert satellite.describe_count >= 2  # config flow + entry setup (+ the satellite loop)


async def test_realtime_run_turns_on_the_light(
    hass: HomeAssistant,
    wired: SatelliteWiring,
    satellite: FakeSatellite,
    fake_engines: FakeEngines,
    speech: Callable[[str], bytes],
) -> None:
    """Real-time mic audio -> transcript -> default agent acts -> reply audio at the satellite."""
    light = hass.states.get("light.kitchen_light")
    assert light is not None
    assert light.state == "off"
    result = await satellite.run_pipeline(
        speech("turn_on_kitchen_light"), chunk_ms=10, realtime=True, run_timeout=15
    )

    assert_complete_reply(result)
    assert result.transcript == "turn on the kitchen light"
    assert result.transcribe_language == "en"
    assert result.synthesize_text == "Turned on the light"
    assert fake_engines.tts.messages == ["Turned on the light"]
    light = hass.states.get("light.kitchen_light")
    assert light is not None
    assert light.state == "on"

    # HA re-chunks mic audio to 10 ms for the STT, which stopped 300 ms after the speech.
    assert fake_engines.stt.chunk_sizes == {320}
    assert fake_engines.stt.bytes_received[0] < len(speech("turn_on_kitchen_light"))

    # Timings: monotonic, and the realtime stream took about as long as the speech.
    assert result.speech_end_sent_at is not None
    assert result.transcript_at is not None
    assert result.audio_start_at is not None
    assert result.first_audio_at is not None
    assert result.audio_stop_at is not None
    assert (
        result.started_at
        < result.speech_end_sent_at
        < result.transcript_at
        < result.audio_start_at
        <= result.first_audio_at
        <= result.audio_stop_at
    )
    # Only causal lower bounds: a busy machine stretches every wall-clock span, never shortens
    # it. Real-time pacing cannot send 1.56 s of speech faster than in 1.56 s, and the STT
    # needs 300 ms of real-time silence after it before it can end the utterance.
    assert result.speech_end_sent_at - result.started_at >= 1.56 - 0.02
    assert result.transcript_at - result.speech_end_sent_at >= 0.25
    latency = result.speech_end_to_first_audio
    assert latency is not None
    assert latency >= 0.25, result.summary()
    stamps = [event.at for event in result.events]
    assert stamps == sorted(stamps)
    assert result.mic_stopped_at is not None
    assert result.mic_stopped_at >= result.transcript_at


async def test_fast_runs_back_to_back(
    wired: SatelliteWiring,
    satellite: FakeSatellite,
    fake_engines: FakeEngines,
    speech: Callable[[str], bytes],
) -> None:
    """Mic audio as fast as possible; two runs in a row on one connection."""
    fake_engines.stt.transcripts.extend(["what's the time", "turn on the kitchen light"])
    first = await satellite.run_pipeline(speech("whats_the_time"), realtime=False, run_timeout=30)
    second = await satellite.run_pipeline(
        speech("turn_on_kitchen_light"), realtime=False, run_timeout=30
    )

    assert_complete_reply(first)
    assert first.transcript == "what's the time"
    assert first.synthesize_text
    assert_complete_reply(second)
    assert second.synthesize_text == "Turned on the light"
    assert second.started_at > first.finished_at  # type: ignore[operator]
    assert satellite.satellite_connection_count == 1


async def test_stt_only_run_ended_by_audio_stop(
    wired: SatelliteWiring,
    satellite: FakeSatellite,
    fake_engines: FakeEngines,
    speech: Callable[[str], bytes],
) -> None:
    """end_stage=ASR finishes at transcript; send_audio_stop ends the STT's stream."""
    fake_engines.stt.end_silence_ms = 60_000  # only the end of the stream ends the utterance
    pcm = speech("whats_the_time")
    result = await satellite.run_pipeline(
        pcm,
        realtime=False,
        trailing_silence_ms=200,
        send_audio_stop=True,
        end_stage=PipelineStage.ASR,
        run_timeout=10,
    )

    assert result.ok, result.summary()
    assert result.event_types == ["transcribe", "transcript"]
    assert result.reply_pcm == b""
    assert not result.expects_reply
    # The STT read everything the satellite sent before audio-stop (10 ms re-chunked).
    assert fake_engines.stt.bytes_received == [result.mic_bytes_sent]
    assert result.mic_bytes_sent == len(pcm) + 6400 + (-(len(pcm) + 6400)) % 640


async def test_barge_in_second_run_during_reply(
    wired: SatelliteWiring,
    satellite: FakeSatellite,
    fake_engines: FakeEngines,
    speech: Callable[[str], bytes],
) -> None:
    """A second run starts while the first reply is mid-air; both replies are told apart."""
    fake_engines.stt.transcripts.extend(["turn on the kitchen light", "what's the time"])
    held = fake_engines.tts.hold()  # hold every reply after its first half
    first = await satellite.start_run(
        speech("turn_on_kitchen_light"), realtime=False, run_timeout=30
    )
    await first.wait_first_audio(within=10)
    assert not first.done

    second = await satellite.start_run(speech("whats_the_time"), realtime=False, run_timeout=30)
    assert await second.wait_transcript(within=10) == "what's the time"
    assert first.result.audio_stop_at is None  # still mid-reply
    held.set()

    first_result = await first.wait()
    second_result = await second.wait()
    assert_complete_reply(first_result)
    assert_complete_reply(second_result)
    assert first_result.synthesize_text == "Turned on the light"
    assert second_result.transcript == "what's the time"
    assert second_result.started_at < first_result.audio_stop_at  # type: ignore[operator]


async def test_disconnect_mid_reply(
    hass: HomeAssistant,
    wired: SatelliteWiring,
    satellite: FakeSatellite,
    fake_engines: FakeEngines,
    speech: Callable[[str], bytes],
    tolerate_wyoming_disconnect_errors: list[BaseException],
) -> None:
    """Dropping the connection mid-reply ends the run at once; a reloaded entry works again."""
    held = fake_engines.tts.hold()
    handle = await satellite.start_run(
        speech("turn_on_kitchen_light"), realtime=False, run_timeout=30
    )
    await handle.wait_first_audio(within=10)

    await satellite.disconnect()
    result = await handle.wait(within=2)
    assert result.disconnected
    assert not result.timed_out
    assert result.first_audio_at is not None
    assert result.audio_stop_at is None
    assert not satellite.connected

    # HA 2026.10.4 writes the rest of the reply to the dead connection: its _stream_tts
    # task dies with an unretrieved ConnectionResetError (swallowed by the fixture, like the
    # BrokenPipeError HA's run() teardown then dies with on the reload below).
    fake_engines.tts.stop_holding()
    held.set()
    async with asyncio.timeout(5):
        while not tolerate_wyoming_disconnect_errors:  # noqa: ASYNC110 - HA reports it via the loop
            await asyncio.sleep(0.01)

    # HA by itself reconnects only ~13 s later (3 s restart delay, then its stale client's
    # wait_closed() raises ConnectionResetError -> "failed to connect" -> 10 s); a reload
    # reconnects at once.
    assert await hass.config_entries.async_reload(wired.entry.entry_id)
    await satellite.wait_connected(within=10)
    assert satellite.satellite_connection_count == 2
    fake_engines.stt.transcripts.append("what's the time")
    again = await satellite.run_pipeline(speech("whats_the_time"), realtime=False, run_timeout=30)
    assert_complete_reply(again)
