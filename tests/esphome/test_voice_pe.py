"""A Voice PE (simulated, real ESPHome native API) through HA's esphome integration and our bridge.

device (Noise-encrypted native API, spoken WAV) -> HA esphome -> assist pipeline -> our STT ->
Live emulator -> tool call -> a real light turns on -> native audio -> our TTS -> HA's ffmpeg
(FLAC 48 kHz, the Voice PE's announcement format) -> HTTP -> device.

Only public surfaces are asserted: what the device received and when, light states, HA entity
states, the emulator's records of what "Gemini" heard.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import time

from homeassistant.components.assist_pipeline.const import WAKE_WORD_COOLDOWN
from homeassistant.components.assist_satellite import AssistSatelliteEntityFeature
from homeassistant.const import ATTR_SUPPORTED_FEATURES, STATE_UNAVAILABLE
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers.event import async_track_state_change_event
import numpy as np
import pytest

from custom_components.gemini_live import stt as stt_platform
from custom_components.gemini_live.const import DOMAIN
from custom_components.gemini_live.runtime import reply_audio
from devtools.esphome_satellite import EsphomeSatellite, RunResult
from devtools.ha_esphome import EsphomeWiring, wait_satellite_available
from live_emulator import LiveEmulator, Scenario

from ..conftest import agent_data, wait_for
from .conftest import loud

STORY = "Once upon a time there was a kitchen light that never wanted to sleep. " * 6
PIPELINE_ORDER = [
    "RUN_START",
    "STT_START",
    "STT_END",
    "INTENT_START",
    "INTENT_END",
    "TTS_START",
    "TTS_END",
    "RUN_END",
]


def assert_in_order(result: RunResult, expected: list[str]) -> None:
    """The expected events all arrived, in this order (others may sit between them)."""
    types = result.event_types
    positions = [types.index(t) if t in types else -1 for t in expected]
    assert -1 not in positions, result.summary()
    assert positions == sorted(positions), result.summary()


async def after_wake_word_cooldown(run: RunResult) -> None:
    """Wait until HA would accept the same wake word again (WAKE_WORD_COOLDOWN after ``run``).

    HA drops a wake-up with the phrase of one less than 2 s old (another satellite hearing the
    same wake word); a person speaks again later than that.
    """
    await wait_for(
        lambda: time.perf_counter() - run.started_at > WAKE_WORD_COOLDOWN + 0.5, within=10
    )


async def reply_samples(
    result: RunResult, decode: Callable[[bytes], Awaitable[np.ndarray]]
) -> np.ndarray:
    """The reply the device received, as 16 kHz int16 samples."""
    if result.playback is not None:
        return await decode(result.playback.body)
    return np.frombuffer(result.streamed_pcm, dtype="<i2")


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
    wiring = await wire(voice_pe)
    states: list[str] = []

    @callback
    def on_state(event: Event[EventStateChangedData]) -> None:
        if (new := event.data["new_state"]) is not None:
            states.append(new.state)

    unsub = async_track_state_change_event(hass, wiring.satellite_entity_id, on_state)
    emulator.queue_transcripts("turn on the kitchen light")
    result = await voice_pe.run(speech("turn_on_kitchen_light"))
    await wait_for(lambda: states[-1:] == ["idle"])
    unsub()

    assert result.ok, result.summary()
    assert (result.stt_text or "").lower() == "turn on the kitchen light"
    assert hass.states.get(kitchen_light).state == "on"
    assert_in_order(result, PIPELINE_ORDER)
    # HA gave the streaming URL at RUN_START and said "start streaming" during the intent
    # stage: the device fetched the reply while Gemini still answered, not after INTENT_END.
    streaming = next(
        e
        for e in result.events
        if e.type == "INTENT_PROGRESS" and e.data.get("tts_start_streaming") == "1"
    )
    intent_end = result.event("INTENT_END")
    assert intent_end is not None
    playback = result.playback
    assert playback is not None
    assert playback.url == result.event("RUN_START").data["url"]  # type: ignore[union-attr]
    assert streaming.at <= playback.requested_at < intent_end.at
    # The Voice PE's announcement format: FLAC, 48 kHz mono.
    assert playback.completed, playback
    assert playback.body[:4] == b"fLaC"
    assert playback.first_byte_at is not None
    assert playback.first_audio_at is not None
    assert playback.first_byte_at <= playback.first_audio_at
    samples = await reply_samples(result, decode)
    assert len(samples) > 16000 * 0.3
    assert loud(samples) > 1000  # speech-like audio, not keep-alive silence
    # The device said it finished playing; HA's satellite went listening -> ... -> idle.
    assert result.announce_finished_at is not None
    assert states[0] == "listening"
    assert "responding" in states
    assert not result.continue_conversation
    assert len(voice_pe.runs) == 1  # no follow-up without a question
    voice = emulator.connections[-1]
    assert voice.utterances[0]["transcript"].lower() == "turn on the kitchen light"
    assert voice.tool_responses[0].name.endswith("HassTurnOn")


async def test_barge_in_stops_the_reply(
    hass: HomeAssistant,
    voice_pe: EsphomeSatellite,
    wire: Callable[..., Awaitable[EsphomeWiring]],
    emulator: LiveEmulator,
    speech: Callable[[str], bytes],
    decode: Callable[[bytes], Awaitable[np.ndarray]],
) -> None:
    """The wake word while a long reply plays: it stops, and the new request is answered."""
    await wire(voice_pe)
    emulator.config.pace = 1.0  # a real-time reply (~25 s), still playing when the user wakes it
    emulator.config.scenario = Scenario.from_dict(
        {
            "turns": [
                {"match": "audio", "transcript": "tell me a story", "steps": [{"say": STORY}]},
                {"match": "audio", "transcript": "stop", "steps": [{"say": "Okay."}]},
            ]
        }
    )
    first = await voice_pe.start_run(speech("whats_the_time"), realtime=False)
    await first.wait_first_audio(within=20)
    # The user speaks up a little later, while the story still plays.
    await after_wake_word_cooldown(first.result)
    assert first.result.playback is not None
    assert not first.result.playback.done
    second = await voice_pe.start_run(speech("whats_the_time"), realtime=False)
    old = await first.wait(within=5)
    new = await second.wait(within=60)

    assert old.superseded
    assert old.playback is not None
    assert old.playback.stopped  # the device stopped playing the story
    assert new.ok, new.summary()
    assert new.stt_text == "stop"
    samples = await reply_samples(new, decode)
    assert loud(samples) > 1000
    # The new reply is "Okay." (under 3 s), not the rest of the story.
    assert len(samples) < 3 * 16000
    assert len(voice_pe.runs) == 2


@pytest.mark.parametrize(
    "transcripts",
    [("set a timer", "ten minutes")],
)
async def test_follow_up_question_keeps_listening(
    hass: HomeAssistant,
    voice_pe: EsphomeSatellite,
    wire: Callable[..., Awaitable[EsphomeWiring]],
    emulator: LiveEmulator,
    speech: Callable[[str], bytes],
    decode: Callable[[bytes], Awaitable[np.ndarray]],
    transcripts: tuple[str, str],
) -> None:
    """Gemini asks a question: the device listens again by itself, in the same conversation."""
    await wire(voice_pe)
    # The question is paced in real time (~2.5 s): the device listens again only after it
    # played, later than HA's WAKE_WORD_COOLDOWN (the follow-up repeats the wake word phrase,
    # as the firmware does, and HA drops a repeat within 2 s).
    emulator.config.pace = 1.0
    emulator.config.scenario = Scenario.from_dict(
        {
            "turns": [
                {
                    "match": "audio",
                    "transcript": transcripts[0],
                    "steps": [
                        {"say": "For how long would you like the timer to run?"},
                        {"end": {"turnCompleteReason": "NEED_MORE_INPUT", "waitingForInput": True}},
                    ],
                },
                {
                    "match": "audio",
                    "transcript": transcripts[1],
                    "steps": [{"say": "Okay, ten minutes."}],
                },
            ]
        }
    )
    voice_pe.queue_speech(speech("whats_the_time"))  # what the user answers, no wake word
    first = await voice_pe.run(speech("whats_the_time"), realtime=False)

    assert first.ok, first.summary()
    assert first.continue_conversation
    assert first.follow_up is not None
    follow = await first.follow_up.wait(within=60)
    assert follow.trigger == "continue_conversation"
    # The device listened again only after the question finished playing.
    assert first.announce_finished_at is not None
    assert first.announce_finished_at <= follow.started_at
    assert follow.conversation_id_sent == first.conversation_id
    assert follow.ok, follow.summary()
    assert follow.stt_text == transcripts[1]
    assert follow.conversation_id == first.conversation_id
    assert not follow.continue_conversation
    assert loud(await reply_samples(follow, decode)) > 1000
    assert len(voice_pe.runs) == 2  # and then it stops listening
    # Gemini heard both answers in one session (the conversation kept its context).
    voice = [c for c in emulator.connections if c.utterances]
    assert [u["transcript"] for c in voice for u in c.utterances] == list(transcripts)
    assert len(voice) == 1


@pytest.mark.parametrize("agent_options", [agent_data(success_scheduling="WHEN_IDLE")])
async def test_later_reply_and_announce_play_on_the_device(
    hass: HomeAssistant,
    kitchen_light: str,
    voice_pe: EsphomeSatellite,
    wire: Callable[..., Awaitable[EsphomeWiring]],
    emulator: LiveEmulator,
    speech: Callable[[str], bytes],
    decode: Callable[[bytes], Awaitable[np.ndarray]],
) -> None:
    """A result spoken after the run ended, and gemini_live.announce, play on the Voice PE."""
    wiring = await wire(voice_pe)
    emulator.queue_transcripts("turn on the kitchen light")
    result = await voice_pe.run(speech("turn_on_kitchen_light"), realtime=False)
    assert result.ok, result.summary()
    assert hass.states.get(kitchen_light).state == "on"

    # The WHEN_IDLE tool result is spoken later, as an announcement on this device.
    await voice_pe.wait_for(lambda: len(voice_pe.announcements) >= 1)
    later = await voice_pe.announcements[0].wait(within=30)
    assert result.run_end_at is not None
    assert later.received_at > result.run_end_at  # after the voice run ended
    assert not later.start_conversation
    assert later.finished_at is not None
    [played] = later.playbacks  # no pre-announcement chime
    assert played.completed, played
    assert result.playback is not None
    assert result.playback.finished_at is not None
    assert played.requested_at >= result.playback.finished_at  # heard after the first reply
    assert loud(await decode(played.body)) > 1000

    response = await hass.services.async_call(
        DOMAIN,
        "announce",
        {
            "agent": "conversation.gemini_live",
            "prompt": "tell everyone dinner is ready",
            "targets": [wiring.satellite_entity_id],
        },
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert "dinner is ready" in str(response["text"]).lower()
    await voice_pe.wait_for(lambda: len(voice_pe.announcements) >= 2)
    announced = await voice_pe.announcements[1].wait(within=30)
    assert announced.finished_at is not None
    [played] = announced.playbacks
    assert played.completed, played
    assert played.body[:4] == b"fLaC"  # converted to the device's announcement format
    assert loud(await decode(played.body)) > 1000


async def test_start_conversation_then_listens(
    hass: HomeAssistant,
    kitchen_light: str,
    voice_pe: EsphomeSatellite,
    wire: Callable[..., Awaitable[EsphomeWiring]],
    emulator: LiveEmulator,
    speech: Callable[[str], bytes],
    decode: Callable[[bytes], Awaitable[np.ndarray]],
) -> None:
    """assist_satellite.start_conversation: the question plays, then the device listens."""
    wiring = await wire(voice_pe)
    emulator.config.scenario = Scenario.from_dict(
        {
            "turns": [
                {
                    "match": "audio",
                    "transcript": "yes please",
                    "steps": [
                        {"say": "Sure, turning on the kitchen light."},
                        {"tool_call": {"name": "HassTurnOn", "args": {"name": "Kitchen Light"}}},
                    ],
                }
            ]
        }
    )
    voice_pe.queue_speech(speech("turn_on_kitchen_light"))  # the user's answer
    await hass.services.async_call(
        "assist_satellite",
        "start_conversation",
        {
            "entity_id": wiring.satellite_entity_id,
            "start_message": "Should I turn on the kitchen light?",
            "preannounce": False,
        },
        blocking=True,
    )
    [announcement] = voice_pe.announcements
    assert announcement.start_conversation
    assert announcement.text == "Should I turn on the kitchen light?"
    assert announcement.finished_at is not None
    [question] = announcement.playbacks
    assert question.completed, question
    assert loud(await decode(question.body)) > 1000  # our TTS read the question aloud

    await voice_pe.wait_for(lambda: announcement.follow_up is not None, within=10)
    assert announcement.follow_up is not None
    answer = await announcement.follow_up.wait(within=60)
    assert answer.trigger == "start_conversation"
    assert answer.started_at >= announcement.finished_at
    assert answer.ok, answer.summary()
    assert answer.stt_text == "yes please"
    assert hass.states.get(kitchen_light).state == "on"
    assert loud(await reply_samples(answer, decode)) > 1000


async def test_disconnect_mid_reply_then_reconnect(
    hass: HomeAssistant,
    voice_pe: EsphomeSatellite,
    wire: Callable[..., Awaitable[EsphomeWiring]],
    emulator: LiveEmulator,
    speech: Callable[[str], bytes],
    decode: Callable[[bytes], Awaitable[np.ndarray]],
) -> None:
    """The device drops off the network mid-reply: HA reconnects and the next run works."""
    wiring = await wire(voice_pe)
    emulator.config.pace = 1.0  # a real-time reply (~12 s), dropped in the middle
    emulator.config.scenario = Scenario.from_dict(
        {
            "turns": [
                {
                    "match": "audio",
                    "transcript": "tell me a story",
                    "steps": [{"say": STORY[: len(STORY) // 2]}],
                }
            ]
        }
    )
    handle = await voice_pe.start_run(speech("whats_the_time"), realtime=False)
    await handle.wait_first_audio(within=20)
    await voice_pe.disconnect()
    dropped = await handle.wait(within=10)
    assert dropped.disconnected
    assert dropped.run_end_at is None
    await wait_for(
        lambda: (
            (s := hass.states.get(wiring.satellite_entity_id)) is None
            or s.state == STATE_UNAVAILABLE
        ),
        within=10,
    )

    # HA's esphome reconnects by itself; the satellite comes back with its pipeline.
    await voice_pe.wait_connected(within=60)
    await wait_satellite_available(hass, wiring.entry, within=30)
    assert voice_pe.voice_subscriptions == 2
    # HA does not stop the interrupted pipeline: when Gemini's turn ends, its last events
    # (INTENT_END ... RUN_END) reach the device on the new connection. The user asks again
    # after that (a request made meanwhile would be ended by that stale RUN_END).
    await voice_pe.wait_for(lambda: dropped.run_end_at is not None, within=60)
    assert dropped.finished_at is not None
    assert dropped.run_end_at > dropped.finished_at
    emulator.config.pace = 0.0
    emulator.queue_transcripts("what did I ask")
    again = await voice_pe.run(speech("whats_the_time"), realtime=False)
    assert again.ok, again.summary()
    assert again.stt_text == "what did I ask"
    assert loud(await reply_samples(again, decode)) > 1000


PARTIAL_DEVICES = {
    # An Atom Echo style device: its own speaker, audio over UDP both ways, nothing else.
    "udp_speaker": {"features": 0b11, "media_player": False},
    # A speaker streamed over the API, no announcements.
    "api_speaker": {"features": 0b111, "media_player": False},
    # Replies through a media player, but no announcements / start conversation / timers.
    "media_player_only": {"features": 0b101, "media_player": True},
}


@pytest.mark.parametrize("profile", list(PARTIAL_DEVICES))
async def test_device_with_fewer_features(
    hass: HomeAssistant,
    kitchen_light: str,
    wire: Callable[..., Awaitable[EsphomeWiring]],
    emulator: LiveEmulator,
    speech: Callable[[str], bytes],
    decode: Callable[[bytes], Awaitable[np.ndarray]],
    socket_enabled: None,
    profile: str,
) -> None:
    """Without API audio or announcements the request still works with what the device has."""
    options = PARTIAL_DEVICES[profile]
    async with EsphomeSatellite(
        name=f"satellite-{profile.replace('_', '-')}",
        friendly_name=f"Satellite {profile}",
        features=options["features"],
        media_player=options["media_player"],
    ) as device:
        wiring = await wire(device)
        state = hass.states.get(wiring.satellite_entity_id)
        assert state is not None
        assert not state.attributes[ATTR_SUPPORTED_FEATURES] & AssistSatelliteEntityFeature.ANNOUNCE
        emulator.queue_transcripts("turn on the kitchen light")
        result = await device.run(speech("turn_on_kitchen_light"))

        assert result.ok, result.summary()
        assert hass.states.get(kitchen_light).state == "on"
        assert result.audio_mode == ("api" if options["features"] & 0b100 else "udp")
        if options["media_player"]:
            assert result.playback is not None
        else:
            assert result.playback is None
            assert result.stream_started_at is not None
        assert loud(await reply_samples(result, decode)) > 1000


async def test_timer_reaches_the_device(
    hass: HomeAssistant,
    voice_pe: EsphomeSatellite,
    wire: Callable[..., Awaitable[EsphomeWiring]],
    emulator: LiveEmulator,
    speech: Callable[[str], bytes],
) -> None:
    """A device with TIMERS: a timer Gemini starts by voice is announced to that device."""
    await wire(voice_pe)
    emulator.config.scenario = Scenario.from_dict(
        {
            "turns": [
                {
                    "match": "audio",
                    "transcript": "set a timer for five minutes",
                    "steps": [
                        {"tool_call": {"name": "HassStartTimer", "args": {"minutes": 5}}},
                        {"say_result": {}},
                    ],
                }
            ]
        }
    )
    result = await voice_pe.run(speech("whats_the_time"), realtime=False)
    assert result.ok, result.summary()
    # HA sends the timer event while the tool runs, on the same connection, before RUN_END.
    assert voice_pe.timer_events, result.summary()
    started = voice_pe.timer_events[0]
    assert result.run_end_at is not None
    assert started.at < result.run_end_at
    assert started.type == "STARTED"
    assert started.total_seconds == 300
    assert started.is_active


async def test_reply_flac_encoder_is_opened_while_the_user_speaks(
    hass: HomeAssistant,
    kitchen_light: str,
    voice_pe: EsphomeSatellite,
    wire: Callable[..., Awaitable[EsphomeWiring]],
    emulator: LiveEmulator,
    speech: Callable[[str], bytes],
    decode: Callable[[bytes], Awaitable[np.ndarray]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a FLAC reply, the next voice run opens its reply's encoder when it starts, not
    when the model answers (opening one costs ~4 ms of the event loop); the reply uses it."""
    if not reply_audio.PREFERRED_FORMAT_PASSTHROUGH:
        pytest.skip("HA < 2026.11 converts the reply with ffmpeg: no FLAC encoder of ours")
    opened: list[tuple[str, float]] = []  # (who, when: time.perf_counter())
    real_open = reply_audio.open_flac

    def spy(who: str) -> Callable[..., reply_audio.OpenedFlac]:
        def open_flac(rate: int, channels: int = 1) -> reply_audio.OpenedFlac:
            opened.append((who, time.perf_counter()))
            return real_open(rate, channels)

        return open_flac

    monkeypatch.setattr(stt_platform, "open_flac", spy("stt"))
    monkeypatch.setattr(reply_audio, "open_flac", spy("reply"))
    await wire(voice_pe)
    results = []
    for _ in range(2):
        emulator.queue_transcripts("turn on the kitchen light")
        results.append(result := await voice_pe.run(speech("turn_on_kitchen_light")))
        assert result.ok, result.summary()
        await after_wake_word_cooldown(result)
    assert [who for who, _ in opened] == ["reply", "stt"]
    second_audio = [
        at
        for connection in emulator.connections
        if (at := connection.first_audio_sent_at(after=results[1].started_at)) is not None
    ]
    assert results[1].started_at < opened[1][1] < min(second_audio)  # before the model spoke
    for result in results:
        assert result.playback is not None
        assert result.playback.body[:4] == b"fLaC"
        assert loud(await reply_samples(result, decode)) > 1000
