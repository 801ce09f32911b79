"""The Live API as it is today (issue 13): each new frame and option, over real sockets."""

from __future__ import annotations

import base64
from collections.abc import Callable
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from live_emulator import LiveEmulator, Scenario
from live_emulator.scenario import ScenarioError
from live_emulator.speech import OUTPUT_RATE

from .conftest import (
    MODEL_25,
    MODEL_31,
    MODEL_38,
    MODEL_38X,
    recv_turn,
    recv_until,
    send,
    send_audio,
    setup_session,
    silence,
    tone,
)

SCENARIOS = Path(__file__).parents[2] / "live_emulator" / "scenarios"
TURN_ON = {
    "name": "HassTurnOn",
    "parameters": {"type": "OBJECT", "properties": {"name": {"type": "STRING"}}},
}
WEATHER = {
    "name": "GetWeather",
    "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}},
}


def text_turn(text: str) -> dict[str, Any]:
    return {
        "clientContent": {
            "turns": [{"role": "user", "parts": [{"text": text}]}],
            "turnComplete": True,
        }
    }


def content(msg: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = msg.get("serverContent", {})
    return value


def said(msgs: list[dict[str, Any]]) -> str:
    return "".join(
        content(m)["outputTranscription"]["text"]
        for m in msgs
        if "outputTranscription" in content(m)
    )


def audio_chunks(msgs: list[dict[str, Any]]) -> list[int]:
    """Byte length of every reply audio chunk."""
    out = []
    for m in msgs:
        for part in content(m).get("modelTurn", {}).get("parts", []):
            if "inlineData" in part:
                out.append(len(base64.b64decode(part["inlineData"]["data"])))
    return out


def response(call: dict[str, Any], body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    fr = {"id": call["id"], "name": call["name"], "response": body, **extra}
    return {"toolResponse": {"functionResponses": [fr]}}


def turn_end(msgs: list[dict[str, Any]]) -> dict[str, Any]:
    return content(msgs[-1])


# ---------------------------------------------------------------- extended thinking


async def test_extended_thinking_filler_in_progress_then_idle(emu: LiveEmulator) -> None:
    """Tool call -> filler speech -> IN_PROGRESS -> (tool runs) -> answer -> IDLE."""
    setup = {
        "model": f"models/{MODEL_38X}",
        "tools": [{"functionDeclarations": [TURN_ON]}],
        "generationConfig": {"thinkingConfig": {"thinkingLevel": "HIGH"}},
        "outputAudioTranscription": {},
    }
    ws = await setup_session(emu, setup)
    await send(ws, text_turn("turn on the kitchen light"))
    first = await recv_turn(ws)
    code, call_msg = first[0], first[1]
    assert "executableCode" in content(code)["modelTurn"]["parts"][0]
    call = call_msg["toolCall"]["functionCalls"][0]
    assert call["args"] == {"name": "kitchen light"}
    assert said(first) == "One moment, checking..."
    assert content(first[-2]) == {"generationComplete": True}
    assert turn_end(first) == {"turnComplete": True, "interactionStatus": "IN_PROGRESS"}
    # Background reasoning is billed as thoughts (HIGH).
    assert first[-1]["usageMetadata"]["thoughtsTokenCount"] == 1024
    # Only now does the (slow) tool finish.
    await send(ws, response(call, {"success": True}))
    second = await recv_turn(ws)
    assert said(second) == "Done, the kitchen light is now on."
    assert turn_end(second) == {"turnComplete": True, "interactionStatus": "IDLE"}
    rec = emu.connections[0].tool_responses[0]
    assert (rec.behavior, rec.scheduling, rec.status) == ("NON_BLOCKING", "WHEN_IDLE", "applied")
    # A request without tools is one turn, IDLE at once.
    await send(ws, text_turn("Hello"))
    hello = await recv_turn(ws)
    assert turn_end(hello) == {"turnComplete": True, "interactionStatus": "IDLE"}
    await ws.close()


async def test_extended_thinking_scenario_file_and_unnamed_response(
    make_emulator: Callable[..., LiveEmulator],
) -> None:
    """The shipped scenario; a response without the function's name reads as a failure."""
    scenario = Scenario.load(SCENARIOS / "extended_thinking_tool.json")
    async with make_emulator(scenario=scenario) as emu:
        setup = {
            "model": f"models/{MODEL_38X}",
            "tools": [{"functionDeclarations": [WEATHER]}],
            "outputAudioTranscription": {},
        }
        ws = await setup_session(emu, setup)
        await send(ws, text_turn("what's the weather in Paris?"))
        first = await recv_turn(ws)
        call = next(m for m in first if "toolCall" in m)["toolCall"]["functionCalls"][0]
        assert (call["name"], call["args"]) == ("GetWeather", {"city": "Paris"})
        assert turn_end(first)["interactionStatus"] == "IN_PROGRESS"
        await send(
            ws,
            {"toolResponse": {"functionResponses": [{"id": call["id"], "response": {"temp": 21}}]}},
        )
        second = await recv_turn(ws)
        assert said(second) == "Sorry, a system error occurred."
        assert turn_end(second)["interactionStatus"] == "IDLE"
        await ws.close()


async def test_extended_thinking_silent_result_ends_the_interaction(emu: LiveEmulator) -> None:
    setup = {"model": f"models/{MODEL_38X}", "tools": [{"functionDeclarations": [TURN_ON]}]}
    ws = await setup_session(emu, setup)
    await send(ws, text_turn("turn on the kitchen light"))
    first = await recv_turn(ws)
    call = next(m for m in first if "toolCall" in m)["toolCall"]["functionCalls"][0]
    await send(ws, response(call, {"success": True}, scheduling="SILENT"))
    second = await recv_turn(ws)
    assert audio_chunks(second) == []
    assert turn_end(second)["interactionStatus"] == "IDLE"
    await ws.close()


async def test_extended_thinking_new_request_while_in_progress(emu: LiveEmulator) -> None:
    """The user asks something else while the tool runs: answered, still IN_PROGRESS; the
    result is spoken later and closes the interaction."""
    setup = {
        "model": f"models/{MODEL_38X}",
        "tools": [{"functionDeclarations": [TURN_ON]}],
        "outputAudioTranscription": {},
    }
    ws = await setup_session(emu, setup)
    await send(ws, text_turn("turn on the kitchen light"))
    first = await recv_turn(ws)
    call = next(m for m in first if "toolCall" in m)["toolCall"]["functionCalls"][0]
    await send(ws, text_turn("Hello"))
    hello = await recv_turn(ws)
    assert said(hello) == "Hello! How can I help you today?"
    assert not any("interrupted" in content(m) for m in hello)
    assert turn_end(hello)["interactionStatus"] == "IN_PROGRESS"
    await send(ws, response(call, {"success": True}))
    last = await recv_turn(ws)
    assert said(last) == "Done, the kitchen light is now on."
    assert turn_end(last)["interactionStatus"] == "IDLE"
    await ws.close()


# ---------------------------------------------------------------- chunking and ordering


async def test_audio_chunks_are_200_to_240_ms_and_transcription_follows(
    emu: LiveEmulator,
) -> None:
    ws = await setup_session(emu, {"model": f"models/{MODEL_38}", "outputAudioTranscription": {}})
    await send(ws, text_turn("Please tell me something long enough to need several chunks"))
    msgs = await recv_turn(ws)
    sizes = audio_chunks(msgs)
    assert len(sizes) >= 5
    ms = [n / 2 / OUTPUT_RATE * 1000 for n in sizes]
    assert all(200 <= d <= 240 for d in ms[:-1]), ms
    assert 0 < ms[-1] <= 240
    assert len(set(ms[:-1])) > 1  # not one fixed size
    # Audio first; every transcription piece right after the audio chunk it covers.
    kinds = ["audio" if audio_chunks([m]) else next(iter(content(m)), "") for m in msgs]
    assert kinds[0] == "audio"
    for i, kind in enumerate(kinds):
        if kind == "outputTranscription":
            assert kinds[i - 1] == "audio"
    await ws.close()


async def test_fixed_chunk_size_option(make_emulator: Callable[..., LiveEmulator]) -> None:
    async with make_emulator(audio_chunk_ms=40) as emu:
        ws = await setup_session(emu, {"model": f"models/{MODEL_38}"})
        await send(ws, text_turn("Hello"))
        sizes = audio_chunks(await recv_turn(ws))
        assert set(sizes[:-1]) == {OUTPUT_RATE * 40 // 1000 * 2}
        await ws.close()


async def test_executable_code_before_every_tool_call(emu: LiveEmulator) -> None:
    tools = [{"functionDeclarations": [TURN_ON, {**TURN_ON, "name": "HassTurnOff"}]}]
    ws = await setup_session(emu, {"model": f"models/{MODEL_38}", "tools": tools})
    for request, name in (("turn on the fan", "HassTurnOn"), ("turn off the fan", "HassTurnOff")):
        await send(ws, text_turn(request))
        msgs = await recv_turn(ws)
        i = next(i for i, m in enumerate(msgs) if "toolCall" in m)
        assert content(msgs[i - 1])["modelTurn"]["parts"] == [
            {
                "executableCode": {
                    "language": "PYTHON",
                    "code": f"print(default_api.{name}(name='fan'))",
                }
            }
        ]
    await ws.close()


# ---------------------------------------------------------------- metadata and turn ends


async def test_search_grounding_after_the_answer(emu: LiveEmulator) -> None:
    setup = {
        "model": f"models/{MODEL_38}",
        "tools": [{"googleSearch": {}}],
        "outputAudioTranscription": {},
    }
    ws = await setup_session(emu, setup)
    await send(ws, text_turn("search the weather in Paris"))
    msgs = await recv_turn(ws)
    i = next(i for i, m in enumerate(msgs) if "groundingMetadata" in content(m))
    meta = content(msgs[i])["groundingMetadata"]
    assert said(msgs[:i]) == said(msgs)  # the whole answer came before its sources
    assert "<a class=" in meta["searchEntryPoint"]["renderedContent"]
    assert [c["web"]["title"] for c in meta["groundingChunks"]] == [
        "weather.example.com",
        "news.example.org",
    ]
    assert meta["groundingSupports"][0]["segment"]["text"] == said(msgs)
    assert meta["webSearchQueries"] == ["search the weather in Paris"]
    await ws.close()


async def test_turn_complete_reasons(make_emulator: Callable[..., LiveEmulator]) -> None:
    scenario = Scenario.load(SCENARIOS / "turn_ends.json")
    async with make_emulator(scenario=scenario) as emu:
        ws = await setup_session(emu, {"model": f"models/{MODEL_38}"})
        expected = [
            ("set a timer", {"turnCompleteReason": "NEED_MORE_INPUT", "waitingForInput": True}),
            ("something forbidden", {"turnCompleteReason": "PROHIBITED_INPUT_CONTENT"}),
            ("say something unsafe", {"turnCompleteReason": "GENERATED_CONTENT_SAFETY"}),
            ("call it badly", {"turnCompleteReason": "MALFORMED_FUNCTION_CALL"}),
            ("reject this", {"turnCompleteReason": "RESPONSE_REJECTED"}),
            ("try again", {"turnCompleteReason": "MAX_REGENERATION_REACHED"}),
        ]
        for text, fields in expected:
            await send(ws, text_turn(text))
            msgs = await recv_turn(ws)
            assert turn_end(msgs) == {"turnComplete": True, **fields}
            assert content(msgs[-2]) == {"generationComplete": True}
        await ws.close()


def test_turn_complete_reason_must_be_the_api_enum() -> None:
    with pytest.raises(ScenarioError, match="unknown turnCompleteReason SAFETY"):
        Scenario.from_dict([{"match": "x", "steps": [{"end": {"turnCompleteReason": "SAFETY"}}]}])


async def test_usage_is_per_turn_with_modality_details(emu: LiveEmulator) -> None:
    ws = await setup_session(emu, {"model": f"models/{MODEL_38}"})
    await send(ws, text_turn("Hello"))
    first = (await recv_turn(ws))[-1]["usageMetadata"]
    await send_audio(ws, tone(400) + silence(700))
    second_msgs = await recv_turn(ws)
    second = second_msgs[-1]["usageMetadata"]
    # Per turn: the response counts only this turn's audio; the prompt (the whole context the
    # turn read) grows, and now holds the user's audio too.
    out_s = sum(audio_chunks(second_msgs)) / 2 / OUTPUT_RATE
    assert second["responseTokensDetails"] == [
        {"modality": "AUDIO", "tokenCount": second["responseTokenCount"]}
    ]
    assert second["responseTokenCount"] == pytest.approx(out_s * 25, abs=1)
    assert second["promptTokenCount"] > first["promptTokenCount"]
    assert {d["modality"] for d in second["promptTokensDetails"]} == {"TEXT", "AUDIO"}
    assert {d["modality"] for d in first["promptTokensDetails"]} == {"TEXT"}
    for usage in (first, second):
        assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["responseTokenCount"]
        assert (
            sum(d["tokenCount"] for d in usage["promptTokensDetails"])
            == (usage["promptTokenCount"])
        )
    await ws.close()


async def test_text_modality_usage_details(emu: LiveEmulator) -> None:
    setup = {"model": f"models/{MODEL_25}", "generationConfig": {"responseModalities": ["TEXT"]}}
    ws = await setup_session(emu, setup)
    await send(ws, text_turn("Hello"))
    usage = (await recv_turn(ws))[-1]["usageMetadata"]
    assert [d["modality"] for d in usage["responseTokensDetails"]] == ["TEXT"]
    await ws.close()


# ---------------------------------------------------------------- transcription options


async def test_interim_transcription_only_on_the_38_models(emu: LiveEmulator) -> None:
    for model, interim in ((MODEL_38, True), (MODEL_38X, True), (MODEL_31, False)):
        emu.queue_transcripts("turn on the porch light")
        setup = {"model": f"models/{model}", "inputAudioTranscription": {}}
        ws = await setup_session(emu, setup)
        await send_audio(ws, tone(900) + silence(700))
        msgs = await recv_turn(ws)
        hypotheses = [
            content(m)["interimInputTranscription"]["text"]
            for m in msgs
            if "interimInputTranscription" in content(m)
        ]
        if interim:
            assert hypotheses[0] == "turn"
            assert all(b.startswith(a) for a, b in itertools.pairwise(hypotheses))
            assert len(hypotheses) >= 3
            last_interim = max(
                i for i, m in enumerate(msgs) if "interimInputTranscription" in content(m)
            )
            first_final = min(i for i, m in enumerate(msgs) if "inputTranscription" in content(m))
            assert last_interim < first_final
        else:
            assert hypotheses == []
        await ws.close()


async def test_custom_vocabulary_and_smart_mode(emu: LiveEmulator) -> None:
    cases = [
        (
            {"customVocabulary": ["IKEA Strala"]},
            "turn on the ikea strawler",
            "turn on the IKEA Strala",
        ),
        ({}, "turn on the ikea strawler", "turn on the ikea strawler"),
        ({"mode": "SMART"}, "um turn turn on the uh kitchen light", "Turn on the kitchen light."),
        ({"mode": "VERBATIM"}, "um turn on the light", "um turn on the light"),
    ]
    for config, spoken, heard in cases:
        emu.queue_transcripts(spoken)
        setup = {"model": f"models/{MODEL_31}", "inputAudioTranscription": config}
        ws = await setup_session(emu, setup)
        await send_audio(ws, tone(300) + silence(700))
        msgs = await recv_turn(ws)
        text = "".join(
            content(m)["inputTranscription"]["text"]
            for m in msgs
            if "inputTranscription" in content(m)
        )
        assert text == heard
        # What the model understood is the audio, not the transcription.
        assert emu.connections[-1].utterances[0]["transcript"] == spoken
        await ws.close()


async def test_proactive_video_turn(make_emulator: Callable[..., LiveEmulator]) -> None:
    scenario = Scenario.from_dict(
        [{"match": "video", "steps": [{"say": "I can see someone at the door."}]}]
    )
    async with make_emulator(scenario=scenario) as emu:
        video = {"realtimeInput": {"video": {"data": "AAAA", "mimeType": "image/jpeg"}}}
        plain = await setup_session(emu, {"model": f"models/{MODEL_38}"})
        await send(plain, video)
        await send(plain, text_turn("Hello"))
        assert turn_end(await recv_turn(plain))["turnComplete"]
        assert scenario.cursor == 0  # no proactive video: frames never start a reply
        await plain.close()
        setup = {
            "model": f"models/{MODEL_38}",
            "proactivity": {"proactiveVideo": True},
            "outputAudioTranscription": {},
        }
        ws = await setup_session(emu, setup)
        await send(ws, video)
        msgs = await recv_turn(ws)
        assert said(msgs) == "I can see someone at the door."
        await ws.close()


# ---------------------------------------------------------------- tool responses


async def test_tool_response_without_id_is_ignored(emu: LiveEmulator) -> None:
    """No close: it matches no call (recorded "unknown"); the call still waits for its result."""
    setup = {
        "model": f"models/{MODEL_25}",
        "tools": [{"functionDeclarations": [TURN_ON]}],
        "outputAudioTranscription": {},
    }
    ws = await setup_session(emu, setup)
    await send(ws, text_turn("turn on the kitchen light"))
    msgs = await recv_until(ws, lambda m: "toolCall" in m)
    call = msgs[-1]["toolCall"]["functionCalls"][0]
    no_id = {"functionResponses": [{"name": call["name"], "response": {"success": True}}]}
    await send(ws, {"toolResponse": no_id})
    await send(ws, response(call, {"success": True}))
    reply = await recv_turn(ws)
    assert said(reply) == "Done, the kitchen light is now on."
    records = [(r.id, r.status) for r in emu.connections[0].tool_responses]
    assert records == [("", "unknown"), (call["id"], "applied")]
    await ws.close()


# ---------------------------------------------------------------- scenario steps


async def test_metadata_and_parts_scenario(make_emulator: Callable[..., LiveEmulator]) -> None:
    scenario = Scenario.load(SCENARIOS / "metadata_and_parts.json")
    async with make_emulator(scenario=scenario) as emu:
        setup = {
            "model": f"models/{MODEL_38}",
            "tools": [{"functionDeclarations": [{**TURN_ON, "behavior": "BLOCKING"}]}],
            "outputAudioTranscription": {},
        }
        ws = await setup_session(emu, setup)

        await send(ws, text_turn("search the weather"))
        msgs = await recv_turn(ws)
        meta = next(
            content(m)["groundingMetadata"] for m in msgs if "groundingMetadata" in content(m)
        )
        assert meta["groundingChunks"][0]["web"]["title"] == "meteo.example.fr"

        await send(ws, text_turn("read these pages"))
        msgs = await recv_turn(ws)
        assert content(msgs[0]) == {
            "urlContextMetadata": {
                "urlMetadata": [
                    {"retrievedUrl": u, "urlRetrievalStatus": "URL_RETRIEVAL_STATUS_SUCCESS"}
                    for u in ("https://example.com/a", "https://example.com/b")
                ]
            }
        }

        await send(ws, text_turn("compute six times seven"))
        msgs = await recv_turn(ws)
        parts = [content(m)["modelTurn"]["parts"][0] for m in msgs[:2]]
        assert parts == [
            {"executableCode": {"language": "PYTHON", "code": "print(6 * 7)"}},
            {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "42\n"}},
        ]

        await send(ws, text_turn("listen"))
        msgs = await recv_turn(ws)
        assert msgs[:4] == [
            {"voiceActivity": {"type": "ACTIVITY_START", "audioOffset": "1.250s"}},
            {"voiceActivityDetectionSignal": {"vadSignalType": "VAD_SIGNAL_TYPE_SOS"}},
            {"voiceActivityDetectionSignal": {"vadSignalType": "VAD_SIGNAL_TYPE_EOS"}},
            {"voiceActivity": {"type": "ACTIVITY_END"}},
        ]

        await send(ws, text_turn("stream it"))
        msgs = await recv_until(
            ws, lambda m: "args" in m.get("toolCall", {}).get("functionCalls", [{}])[0]
        )
        streamed = [m["toolCall"]["functionCalls"][0] for m in msgs if "toolCall" in m]
        final = streamed[-1]
        assert final == {
            "name": "HassTurnOn",
            "args": {"name": "kitchen light", "brightness": 80},
            "id": final["id"],
        }
        partial = streamed[:-1]
        assert all(p["willContinue"] is True and p["id"] == final["id"] for p in partial)
        text = "".join(
            a.get("stringValue", "")
            for p in partial
            for a in p["partialArgs"]
            if a["jsonPath"] == "$.name"
        )
        assert text == "kitchen light"
        assert {"jsonPath": "$.brightness", "numberValue": 80} in [
            a for p in partial for a in p["partialArgs"]
        ]
        await send(ws, response(final, {"success": True}))
        reply = await recv_turn(ws)
        assert said(reply) == "Done, the kitchen light is now on."
        await ws.close()


def test_shipped_scenarios_parse() -> None:
    files = sorted(SCENARIOS.glob("*.json"))
    assert len(files) >= 3
    for path in files:
        scenario = Scenario.load(path)
        assert scenario.turns, path
        assert json.loads(path.read_text())["description"]
