"""Wire-level behaviour of the emulator with a plain websocket client."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from live_emulator import LiveEmulator, Scenario
from live_emulator.session import format_duration

from .conftest import (
    API_KEY,
    MODEL_25,
    MODEL_38,
    MODEL_RECORDED,
    assert_setup_complete,
    audio_msg,
    open_raw,
    recv,
    recv_turn,
    recv_until,
    send,
    send_audio,
    setup_session,
    silence,
    tone,
    until_closed,
    ws_path,
)

FIXTURES = Path("/work/shared/fixtures/recorded-live")
TOOLS = [
    {
        "functionDeclarations": [
            {
                "name": "HassTurnOn",
                "description": "Turns on a device",
                "parameters": {"type": "OBJECT", "properties": {"name": {"type": "STRING"}}},
            },
            {
                "name": "HassTurnOff",
                "parameters": {"type": "OBJECT", "properties": {"name": {"type": "STRING"}}},
            },
        ]
    }
]


def text_turn(text: str) -> dict[str, Any]:
    return {
        "clientContent": {
            "turns": [{"role": "user", "parts": [{"text": text}]}],
            "turnComplete": True,
        }
    }


async def expect_close(ws: Any) -> tuple[int, str]:
    _, err = await until_closed(ws)
    rcvd = err.rcvd
    assert rcvd is not None, "expected a close frame"
    return rcvd.code, rcvd.reason


def recorded_server_frames() -> list[dict[str, Any]]:
    frames = []
    for log in sorted(FIXTURES.glob("*.log")):
        for block in log.read_text().split("\n<")[1:]:
            body = block.split(" ", 1)[1]
            end = body.find("\n}\n")
            frames.append(json.loads(body[: end + 2]))
    return frames


# ---------------------------------------------------------------- framing and endpoints


async def test_frames_are_pretty_binary_json_like_the_recordings(emu: LiveEmulator) -> None:
    ws = await open_raw(emu)
    await send(ws, {"setup": {"model": f"models/{MODEL_RECORDED}"}})
    raw = await ws.recv()
    assert isinstance(raw, bytes)
    assert raw == b'{\n  "setupComplete": {}\n}\n'
    await send(ws, text_turn("Hello what should we talk about?"))
    msgs = await recv_turn(ws)
    # Same shape as the real server's transcript (ml_dev_send_text_usage).
    recorded = recorded_server_frames()
    usage_keys = next(set(f) for f in recorded if "usageMetadata" in f)
    assert set(msgs[-1]) == usage_keys
    assert set(msgs[-1]["usageMetadata"]) >= {
        "promptTokenCount",
        "responseTokenCount",
        "totalTokenCount",
        "promptTokensDetails",
        "responseTokensDetails",
    }
    assert msgs[-2] == {"serverContent": {"generationComplete": True}}
    await ws.close()


def test_recorded_frames_are_valid_for_the_conformance_oracle() -> None:
    from .conftest import assert_conformant

    frames = recorded_server_frames()
    assert len(frames) > 8
    for frame in frames:
        assert_conformant(frame)


@pytest.mark.parametrize("version", ["v1alpha", "v1beta", "v1"])
async def test_versions_and_double_slash_and_query_key(emu: LiveEmulator, version: str) -> None:
    url = f"{emu.ws_url}/{ws_path(version)}?key={API_KEY}"
    assert "//ws/" in url
    async with connect(url) as ws:
        await send(ws, {"setup": {"model": f"models/{MODEL_38}"}})
        assert_setup_complete(await recv(ws))
    assert emu.connections[0].api_version == version


async def test_unknown_path_is_404(emu: LiveEmulator) -> None:
    with pytest.raises(InvalidStatus) as err:
        await connect(f"{emu.ws_url}/ws/google.ai.generativelanguage.v1beta.Nope")
    assert err.value.response.status_code == 404


async def test_bad_key_closes_1007_after_handshake(emu: LiveEmulator) -> None:
    ws = await open_raw(emu, key="nope")
    await send(ws, {"setup": {"model": f"models/{MODEL_38}"}})
    assert await expect_close(ws) == (1007, "API key not valid. Please pass a valid API key.")


async def test_missing_key_closes(emu: LiveEmulator) -> None:
    ws = await open_raw(emu, key=None)
    await send(ws, {"setup": {"model": f"models/{MODEL_38}"}})
    code, reason = await expect_close(ws)
    assert code == 1008
    assert len(reason.encode()) <= 123


async def test_any_key_accepted_when_unconfigured(
    make_emulator: Callable[..., LiveEmulator],
) -> None:
    async with make_emulator(api_keys=None) as emu:
        ws = await setup_session(emu, {"model": f"models/{MODEL_38}"}, key="whatever")
        await ws.close()


# ---------------------------------------------------------------- setup validation


async def test_snake_case_setup_accepted(emu: LiveEmulator) -> None:
    setup = {
        "model": f"models/{MODEL_25}",
        "generation_config": {
            "response_modalities": ["AUDIO"],
            "speech_config": {"voice_config": {"prebuilt_voice_config": {"voice_name": "Kore"}}},
            "thinking_config": {"thinking_budget": 0, "include_thoughts": False},
        },
        "realtime_input_config": {
            "automatic_activity_detection": {"silence_duration_ms": 100, "disabled": False}
        },
        "context_window_compression": {
            "trigger_tokens": "25600",
            "sliding_window": {"target_tokens": 12800},
        },
        "tools": [{"google_search": {}}],
    }
    ws = await setup_session(emu, setup)
    eff = emu.connections[0].effective_setup
    assert eff is not None
    assert eff["contextWindowCompression"] == {
        "triggerTokens": 25600,
        "slidingWindow": {"targetTokens": 12800},
    }
    assert emu.connections[0].setup == setup
    await ws.close()


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (
            {"model": f"models/{MODEL_38}", "generationConfig": {"foo": 1}},
            "Invalid JSON payload received. Unknown name \"foo\" at 'setup.generation_config': "
            "Cannot find field.",
        ),
        (
            {"model": f"models/{MODEL_38}", "generationConfig": {"speechConfig": {"voiceX": 1}}},
            'Invalid JSON payload received. Unknown name "voiceX" at '
            "'setup.generation_config.speech_config': Cannot find field.",
        ),
        (
            {"model": f"models/{MODEL_38}", "bogus": True},
            "Invalid JSON payload received. Unknown name \"bogus\" at 'setup': Cannot find field.",
        ),
        (
            {"model": f"models/{MODEL_38}", "generationConfig": {"responseModalities": ["LOUD"]}},
            "Request contains an invalid argument.",
        ),
        (
            {
                "model": f"models/{MODEL_38}",
                "realtimeInputConfig": {"activityHandling": "SOMETIMES"},
            },
            "Request contains an invalid argument.",
        ),
        (
            {"model": f"models/{MODEL_38}", "generationConfig": {"temperature": "hot"}},
            "Invalid value at 'setup.generation_config.temperature' (TYPE_FLOAT), hot",
        ),
    ],
)
async def test_setup_rejections(emu: LiveEmulator, setup: dict[str, Any], reason: str) -> None:
    ws = await open_raw(emu)
    await send(ws, {"setup": setup})
    assert await expect_close(ws) == (1007, reason)


@pytest.mark.parametrize("version", ["v1beta", "v1alpha"])
async def test_unknown_and_retired_models(emu: LiveEmulator, version: str) -> None:
    for model in ("gemini-9-ultra", "gemini-2.0-flash-live-001"):
        ws = await open_raw(emu, version=version)
        await send(ws, {"setup": {"model": f"models/{model}"}})
        assert await expect_close(ws) == (
            1008,
            f"models/{model} is not found for API version {version}, "
            "or is not supported for bidiGenerateContent",
        )


async def test_first_message_must_be_setup(emu: LiveEmulator) -> None:
    ws = await open_raw(emu)
    await send(ws, text_turn("hi"))
    assert (await expect_close(ws))[0] == 1007


# ---------------------------------------------------------------- client messages


@pytest.mark.parametrize(
    "msg",
    [
        {"clientContent": {"turnComplete": True}, "toolResponse": {"functionResponses": []}},
        {"somethingElse": {}},
        {"realtimeInput": {"activityStart": {}}},
        {"toolResponse": {"functionResponses": [{"id": 5, "name": "x", "response": {}}]}},
    ],
)
async def test_bad_client_messages_close_1007(emu: LiveEmulator, msg: dict[str, Any]) -> None:
    ws = await setup_session(emu, {"model": f"models/{MODEL_38}"})
    await send(ws, msg)
    assert (await expect_close(ws))[0] == 1007


async def test_invalid_json_closes_1007(emu: LiveEmulator) -> None:
    ws = await setup_session(emu, {"model": f"models/{MODEL_38}"})
    await ws.send("{not json")
    assert (await expect_close(ws))[0] == 1007


async def test_sample_rate_change_closes_1007(emu: LiveEmulator) -> None:
    ws = await setup_session(emu, {"model": f"models/{MODEL_38}"})
    await send(ws, audio_msg(silence(100)))
    await send(ws, audio_msg(silence(100, rate=24000), rate=24000))
    code, reason = await expect_close(ws)
    assert code == 1007
    assert reason.startswith("Sample rate changed")


async def test_urlsafe_and_standard_base64_and_other_rates(emu: LiveEmulator) -> None:
    emu.queue_transcripts("one", "two")
    ws = await setup_session(
        emu,
        {"model": f"models/{MODEL_38}", "inputAudioTranscription": {}},
    )
    pcm = tone(300, rate=8000) + silence(600, rate=8000)
    await send(ws, audio_msg(pcm[: len(pcm) // 2], rate=8000, urlsafe=True))
    await send(ws, audio_msg(pcm[len(pcm) // 2 :], rate=8000))
    msgs = await recv_turn(ws)
    heard = [
        m["serverContent"]["inputTranscription"]
        for m in msgs
        if "inputTranscription" in m.get("serverContent", {})
    ]
    assert heard == [{"text": "one", "finished": True}]
    for m in msgs:
        for part in m.get("serverContent", {}).get("modelTurn", {}).get("parts", []):
            data = part["inlineData"]["data"]
            assert "-" not in data
            assert "_" not in data
            base64.b64decode(data, validate=True)
    await ws.close()


async def test_client_content_without_turn_complete_only_adds_history(emu: LiveEmulator) -> None:
    ws = await setup_session(
        emu, {"model": f"models/{MODEL_25}", "generationConfig": {"responseModalities": ["TEXT"]}}
    )
    await send(
        ws,
        {
            "clientContent": {
                "turns": [
                    {"role": "user", "parts": [{"text": "Earlier question"}]},
                    {"role": "model", "parts": [{"text": "Earlier answer"}]},
                ]
            }
        },
    )
    await send(ws, text_turn("what did I ask?"))
    msgs = await recv_turn(ws)
    text = "".join(
        p.get("text", "")
        for m in msgs
        for p in m.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
    )
    assert text == 'You asked: "Earlier question"'
    await ws.close()


async def test_video_frames_are_accepted(emu: LiveEmulator) -> None:
    ws = await setup_session(emu, {"model": f"models/{MODEL_38}"})
    jpeg = base64.b64encode(b"\xff\xd8\xff\xe0fake").decode()
    await send(ws, {"realtimeInput": {"video": {"data": jpeg, "mimeType": "image/jpeg"}}})
    await send(ws, text_turn("Hello"))
    await recv_turn(ws)
    assert emu.connections[0].video_frames == 1
    await ws.close()


# ---------------------------------------------------------------- replies


async def test_thoughts_usage_and_grounding(emu: LiveEmulator) -> None:
    setup = {
        "model": f"models/{MODEL_25}",
        "generationConfig": {
            "responseModalities": ["TEXT"],
            "thinkingConfig": {"thinkingBudget": 512, "includeThoughts": True},
        },
        "tools": [{"googleSearch": {}}],
    }
    ws = await setup_session(emu, setup)
    await send(ws, text_turn("search the weather in Paris"))
    msgs = await recv_turn(ws)
    first = msgs[0]["serverContent"]["modelTurn"]["parts"][0]
    assert first["thought"] is True
    assert any("groundingMetadata" in m.get("serverContent", {}) for m in msgs)
    usage = msgs[-1]["usageMetadata"]
    assert usage["thoughtsTokenCount"] > 0
    assert usage["totalTokenCount"] == (
        usage["promptTokenCount"] + usage["responseTokenCount"] + usage["thoughtsTokenCount"]
    )
    assert usage["responseTokensDetails"][0]["modality"] == "TEXT"
    await ws.close()


async def test_audio_reply_duration_scales_with_text(emu: LiveEmulator) -> None:
    ws = await setup_session(emu, {"model": f"models/{MODEL_38}", "outputAudioTranscription": {}})

    async def reply_bytes(text: str) -> int:
        await send(ws, text_turn(text))
        msgs = await recv_turn(ws)
        total = 0
        for m in msgs:
            for part in m.get("serverContent", {}).get("modelTurn", {}).get("parts", []):
                assert part["inlineData"]["mimeType"] == "audio/pcm;rate=24000"
                total += len(base64.b64decode(part["inlineData"]["data"]))
        usage = msgs[-1]["usageMetadata"]
        assert usage["responseTokensDetails"] == [
            {"modality": "AUDIO", "tokenCount": usage["responseTokenCount"]}
        ]
        return total

    short = await reply_bytes("hi")
    long = await reply_bytes("please tell me a much longer story about the mountains and the sea")
    assert long > 2 * short
    await ws.close()


async def test_deterministic_frames(make_emulator: Callable[..., LiveEmulator]) -> None:
    async def run() -> list[dict[str, Any]]:
        async with make_emulator(seed=7) as emu:
            ws = await setup_session(
                emu, {"model": f"models/{MODEL_38}", "tools": TOOLS, "sessionResumption": {}}
            )
            await send(ws, text_turn("turn off the porch light"))
            msgs = await recv_turn(ws)
            msgs.append(await recv(ws))
            await ws.close()
            return msgs

    assert await run() == await run()


async def test_pacing_real_time(make_emulator: Callable[..., LiveEmulator]) -> None:
    async with make_emulator(pace=1.0, ms_per_char=10) as emu:
        ws = await setup_session(emu, {"model": f"models/{MODEL_38}"})
        loop = asyncio.get_running_loop()
        start = loop.time()
        await send(ws, text_turn("Hello"))
        msgs = await recv_turn(ws)
        elapsed = loop.time() - start
        audio_s = sum(
            len(base64.b64decode(p["inlineData"]["data"])) / 48000
            for m in msgs
            for p in m.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
        )
        assert audio_s > 0.2
        assert elapsed >= audio_s * 0.8
        await ws.close()


# ---------------------------------------------------------------- resumption and lifetime


async def test_vertex_only_setup_fields_are_unknown_names(emu: LiveEmulator) -> None:
    """The Gemini API's parser does not know Vertex AI's explicitVadSignal / transparent."""
    cases = [
        ({"explicitVadSignal": True}, "explicitVadSignal", "setup"),
        ({"explicit_vad_signal": True}, "explicit_vad_signal", "setup"),
        ({"sessionResumption": {"transparent": True}}, "transparent", "setup.session_resumption"),
    ]
    for extra, name, where in cases:
        ws = await open_raw(emu)
        await send(ws, {"setup": {"model": f"models/{MODEL_38}", **extra}})
        assert await expect_close(ws) == (
            1007,
            f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': "
            "Cannot find field.",
        )


async def test_resumption_transparent_and_bad_handle(
    make_emulator: Callable[..., LiveEmulator],
) -> None:
    async with make_emulator(vertex_only_fields=True) as emu:
        await _resumption_transparent_and_bad_handle(emu)


async def _resumption_transparent_and_bad_handle(emu: LiveEmulator) -> None:
    ws = await setup_session(
        emu, {"model": f"models/{MODEL_38}", "sessionResumption": {"transparent": True}}
    )
    await send(ws, text_turn("Remember pineapples"))
    await recv_turn(ws)
    update = (await recv(ws))["sessionResumptionUpdate"]
    assert update["resumable"] is True
    assert update["lastConsumedClientMessageIndex"] == "1"
    await ws.close()

    bad = await open_raw(emu)
    await send(
        bad, {"setup": {"model": f"models/{MODEL_38}", "sessionResumption": {"handle": "nope"}}}
    )
    assert (await expect_close(bad))[0] == 1007

    ws2 = await setup_session(
        emu, {"model": f"models/{MODEL_38}", "sessionResumption": {"handle": update["newHandle"]}}
    )
    await send(ws2, text_turn("what did I just ask"))
    msgs = await recv_turn(ws2)
    spoken = [
        m for m in emu.connections[2].sent if "outputTranscription" in m.get("serverContent", {})
    ]
    assert spoken == []  # no transcription requested
    assert msgs[-1]["serverContent"]["turnComplete"]
    assert emu.connections[2].resumed_from == update["newHandle"]
    await ws2.close()


async def test_expired_handle(make_emulator: Callable[..., LiveEmulator]) -> None:
    async with make_emulator(handle_validity_s=0.0) as emu:
        ws = await setup_session(emu, {"model": f"models/{MODEL_38}", "sessionResumption": {}})
        await send(ws, text_turn("hi"))
        await recv_turn(ws)
        handle = (await recv(ws))["sessionResumptionUpdate"]["newHandle"]
        await ws.close()
        await asyncio.sleep(0.01)
        again = await open_raw(emu)
        await send(
            again,
            {"setup": {"model": f"models/{MODEL_38}", "sessionResumption": {"handle": handle}}},
        )
        assert (await expect_close(again))[0] == 1007


async def test_pending_non_blocking_call_survives_resumption(emu: LiveEmulator) -> None:
    setup = {
        "model": f"models/{MODEL_38}",
        "tools": TOOLS,
        "sessionResumption": {},
        "outputAudioTranscription": {},
    }
    ws = await setup_session(emu, setup)
    await send(ws, text_turn("turn on the kitchen light"))
    msgs = await recv_turn(ws)
    call = next(m for m in msgs if "toolCall" in m)["toolCall"]["functionCalls"][0]
    handle = (await recv(ws))["sessionResumptionUpdate"]["newHandle"]
    await ws.close()
    ws2 = await setup_session(emu, {**setup, "sessionResumption": {"handle": handle}})
    await send(
        ws2,
        {
            "toolResponse": {
                "functionResponses": [
                    {
                        "id": call["id"],
                        "name": call["name"],
                        "response": {"success": True, "scheduling": "WHEN_IDLE"},
                    }
                ]
            }
        },
    )
    msgs = await recv_turn(ws2)
    text = "".join(
        m["serverContent"]["outputTranscription"]["text"]
        for m in msgs
        if "outputTranscription" in m.get("serverContent", {})
    )
    assert text == "Done, the kitchen light is now on."
    rec = emu.connections[1].tool_responses[0]
    assert (rec.scheduling, rec.requested_scheduling) == ("WHEN_IDLE", "WHEN_IDLE")
    await ws2.close()


async def test_lifetime_go_away_then_close(make_emulator: Callable[..., LiveEmulator]) -> None:
    async with make_emulator(connection_lifetime_s=0.3, go_away_before_end_s=0.2) as emu:
        ws = await setup_session(emu, {"model": f"models/{MODEL_38}"})
        assert await recv(ws) == {"goAway": {"timeLeft": "0.200s"}}
        assert await expect_close(ws) == (1011, "Deadline expired before operation could complete.")


def test_duration_format() -> None:
    assert format_duration(50) == "50s"
    assert format_duration(0.5) == "0.500s"
    assert format_duration(1.25) == "1.250s"
    assert format_duration(0.0001) == "0.000100s"


# ---------------------------------------------------------------- scenario


async def test_scenario_steps(make_emulator: Callable[..., LiveEmulator], tmp_path: Path) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(
        json.dumps(
            {
                "turns": [
                    {
                        "match": "audio",
                        "transcript": "set a timer",
                        "steps": [
                            {"say": "For how long?"},
                            {
                                "end": {
                                    "turnCompleteReason": "NEED_MORE_INPUT",
                                    "waitingForInput": True,
                                }
                            },
                        ],
                    },
                    {
                        "match": {"text": "five minutes"},
                        "steps": [
                            {
                                "tool_call": {
                                    "name": "Timer",
                                    "args": {"minutes": 5},
                                    "wait_for_response": True,
                                }
                            },
                            {"say_result": True},
                            {"grounding": {"metadata": {"webSearchQueries": ["timer"]}}},
                        ],
                    },
                    {"match": {"text": "glitch"}, "steps": [{"say": "Uh"}, {"interrupted": True}]},
                ]
            }
        )
    )
    tools = [
        {
            "functionDeclarations": [
                {
                    "name": "HassStartTimer",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {"minutes": {"type": "INTEGER"}},
                    },
                }
            ]
        }
    ]
    async with make_emulator(scenario=Scenario.load(path)) as emu:
        ws = await setup_session(
            emu,
            {
                "model": f"models/{MODEL_25}",
                "tools": tools,
                "inputAudioTranscription": {},
                "outputAudioTranscription": {},
            },
        )
        await send_audio(ws, tone(300) + silence(600))
        msgs = await recv_turn(ws)
        assert msgs[0] == {
            "serverContent": {"inputTranscription": {"text": "set a timer", "finished": True}}
        }
        end = msgs[-1]["serverContent"]
        assert end == {
            "turnComplete": True,
            "turnCompleteReason": "NEED_MORE_INPUT",
            "waitingForInput": True,
        }
        await send(ws, text_turn("five minutes"))
        # The model shows its call as code first, then calls (as in the recordings).
        code_msg, call_msg = await recv_until(ws, lambda m: "toolCall" in m)
        assert code_msg == {
            "serverContent": {
                "modelTurn": {
                    "parts": [
                        {
                            "executableCode": {
                                "language": "PYTHON",
                                "code": "print(default_api.HassStartTimer(minutes=5))",
                            }
                        }
                    ]
                }
            }
        }
        call = call_msg["toolCall"]["functionCalls"][0]
        assert call["name"] == "HassStartTimer"
        assert call["args"] == {"minutes": 5}
        await send(
            ws,
            {
                "toolResponse": {
                    "functionResponses": [
                        {"id": call["id"], "name": call["name"], "response": {"result": "started"}}
                    ]
                }
            },
        )
        msgs = await recv_turn(ws)
        assert {"serverContent": {"groundingMetadata": {"webSearchQueries": ["timer"]}}} in msgs
        await send(ws, text_turn("glitch"))
        msgs = await recv_turn(ws)
        assert {"serverContent": {"interrupted": True}} in msgs
        assert not any("generationComplete" in m.get("serverContent", {}) for m in msgs)
        # No more scripted turns: the rules answer.
        await send(ws, text_turn("Hello"))
        await recv_turn(ws)
        await ws.close()


# ---------------------------------------------------------------- ephemeral tokens (REST)


async def test_token_rest_and_field_mask(emu: LiveEmulator) -> None:
    async with aiohttp.ClientSession() as http:
        body = {
            "uses": 2,
            "bidiGenerateContentSetup": {
                "model": f"models/{MODEL_38}",
                "generationConfig": {"temperature": 0.2, "responseModalities": ["AUDIO"]},
                "systemInstruction": {"parts": [{"text": "Be brief."}]},
            },
            "fieldMask": "generationConfig.temperature,systemInstruction",
        }
        async with http.post(
            f"{emu.http_url}/v1alpha/auth_tokens", json=body, headers={"x-goog-api-key": API_KEY}
        ) as resp:
            assert resp.status == 200
            token = await resp.json()
        assert token["uses"] == 2
        assert token["expireTime"].endswith("Z")
        assert token["newSessionExpireTime"].endswith("Z")
        async with http.post(
            f"{emu.http_url}/v1alpha/auth_tokens", json={}, headers={"x-goog-api-key": "bad"}
        ) as resp:
            assert resp.status == 400
            err = await resp.json()
        assert err["error"]["message"] == "API key not valid. Please pass a valid API key."
        assert err["error"]["status"] == "INVALID_ARGUMENT"
        async with http.post(
            f"{emu.http_url}/v1alpha/auth_tokens",
            json={"nope": 1},
            headers={"x-goog-api-key": API_KEY},
        ) as resp:
            assert resp.status == 400

    name = token["name"]
    client_setup = {
        "model": f"models/{MODEL_38}",
        "generationConfig": {"temperature": 1.5},
        "systemInstruction": {"parts": [{"text": "Be verbose."}]},
    }
    ws = await setup_session(
        emu,
        client_setup,
        key=None,
        version="v1alpha",
        method="BidiGenerateContentConstrained",
        query=f"?access_token={name}",
    )
    await ws.close()
    eff = emu.connections[0].effective_setup
    assert eff is not None
    assert eff["generationConfig"]["temperature"] == 0.2
    assert eff["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    ws = await setup_session(
        emu,
        client_setup,
        key=None,
        version="v1alpha",
        method="BidiGenerateContentConstrained",
        headers={"Authorization": f"Token {name}"},
    )
    await ws.close()
    assert emu.tokens[name].uses_left == 0
    third = await open_raw(
        emu,
        key=None,
        version="v1alpha",
        method="BidiGenerateContentConstrained",
        headers={"Authorization": f"Token {name}"},
    )
    await send(third, {"setup": client_setup})
    assert (await expect_close(third))[0] == 1007
    unknown = await open_raw(
        emu,
        key=None,
        version="v1alpha",
        method="BidiGenerateContentConstrained",
        headers={"Authorization": "Token auth_tokens/nope"},
    )
    await send(unknown, {"setup": client_setup})
    assert (await expect_close(unknown))[0] == 1007


async def test_token_new_session_window_and_resumption_is_free(emu: LiveEmulator) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{emu.http_url}/v1alpha/auth_tokens",
            json={"uses": 1, "newSessionExpireTime": "2000-01-01T00:00:00Z"},
            headers={"x-goog-api-key": API_KEY},
        ) as resp:
            late = (await resp.json())["name"]
        async with http.post(
            f"{emu.http_url}/v1alpha/auth_tokens",
            json={"uses": 1},
            headers={"x-goog-api-key": API_KEY},
        ) as resp:
            once = (await resp.json())["name"]
    constrained = {"key": None, "version": "v1alpha", "method": "BidiGenerateContentConstrained"}
    ws = await open_raw(emu, headers={"Authorization": f"Token {late}"}, **constrained)
    await send(ws, {"setup": {"model": f"models/{MODEL_38}"}})
    assert (await expect_close(ws))[0] == 1007

    ws = await setup_session(
        emu,
        {"model": f"models/{MODEL_38}", "sessionResumption": {}},
        headers={"Authorization": f"Token {once}"},
        **constrained,
    )
    await send(ws, text_turn("hi"))
    await recv_turn(ws)
    handle = (await recv(ws))["sessionResumptionUpdate"]["newHandle"]
    await ws.close()
    assert emu.tokens[once].uses_left == 0
    ws = await setup_session(
        emu,
        {"model": f"models/{MODEL_38}", "sessionResumption": {"handle": handle}},
        headers={"Authorization": f"Token {once}"},
        **constrained,
    )
    await ws.close()
    assert emu.tokens[once].uses_left == 0


async def test_constrained_only_on_v1alpha(emu: LiveEmulator) -> None:
    with pytest.raises(InvalidStatus):
        await open_raw(emu, version="v1beta", method="BidiGenerateContentConstrained")


async def test_record_contents(emu: LiveEmulator) -> None:
    ws = await setup_session(emu, {"model": f"models/{MODEL_38}"})
    await send(ws, text_turn("Hello"))
    await recv_turn(ws)
    await ws.close()
    rec = emu.connections[0]
    await rec.wait_closed()
    assert rec.received == [text_turn("Hello")]
    assert rec.sent[0] == {"setupComplete": {"sessionId": rec.session_id}}
    assert rec.close_code == 1000
    assert rec.closed_by == "client"


async def test_stop_closes_open_connections(make_emulator: Callable[..., LiveEmulator]) -> None:
    emu = make_emulator()
    await emu.start()
    ws = await setup_session(emu, {"model": f"models/{MODEL_38}"})
    await emu.stop()
    code, _ = await expect_close(ws)
    assert code == 1001


async def test_recv_until_helper_sanity(emu: LiveEmulator) -> None:
    ws = await setup_session(emu, {"model": f"models/{MODEL_38}", "outputAudioTranscription": {}})
    await send(ws, text_turn("Hello"))
    msgs = await recv_until(ws, lambda m: "generationComplete" in m.get("serverContent", {}))
    assert any("outputTranscription" in m.get("serverContent", {}) for m in msgs)
    await ws.close()


def test_session_does_not_import_the_server() -> None:
    """server.py serves sessions; session.py knows the emulator only through hub.Hub."""
    import ast

    package = Path(__file__).parents[2] / "live_emulator"

    def imported(module: str) -> set[str]:
        tree = ast.parse((package / f"{module}.py").read_text())
        return {
            node.module or ""
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1
        }

    assert "server" not in imported("session")
    assert "server" not in imported("hub")
    assert "session" in imported("server")
