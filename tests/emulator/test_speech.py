"""Synthetic speech is cached, and a scenario's replies can be synthesized ahead."""

from __future__ import annotations

from live_emulator import EmulatorConfig, LiveEmulator, Scenario
from live_emulator.models import DEFAULT_VOICE
from live_emulator.speech import synthesize


def test_synthesis_is_cached_and_deterministic() -> None:
    first = synthesize("cached reply", voice="Kore", seed=3, ms_per_char=50.0)
    assert synthesize("cached reply", voice="Kore", seed=3, ms_per_char=50.0) is first
    other = synthesize("cached reply", voice="Puck", seed=3, ms_per_char=50.0)
    assert other.pcm != first.pcm  # the voice still matters


def test_prepare_speech_synthesizes_a_scenarios_replies_ahead() -> None:
    scenario = Scenario.from_dict(
        {
            "turns": [
                {"match": "audio", "transcript": "a", "steps": [{"say": "prepared one"}]},
                {"match": "text", "steps": [{"say": "prepared two"}, {"say": "prepared one"}]},
            ]
        }
    )
    assert scenario.said_texts() == ["prepared one", "prepared two", "prepared one"]
    config = EmulatorConfig(seed=7, ms_per_char=41.0)
    emulator = LiveEmulator(config)
    before = synthesize.cache_info()
    emulator.prepare_speech(scenario.said_texts())
    after = synthesize.cache_info()
    assert after.misses - before.misses == 2  # each text once, in the default voice
    hits = after.hits
    synthesize("prepared two", voice=DEFAULT_VOICE, seed=7, ms_per_char=41.0)
    assert synthesize.cache_info().hits == hits + 1
