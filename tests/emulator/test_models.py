"""Per-model setup validation: each option a model does not accept closes 1007."""

from __future__ import annotations

from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from live_emulator import LiveEmulator

from .conftest import MODEL_25, MODEL_31, MODEL_38, assert_setup_complete, open_raw, recv, send

INVALID = "Request contains an invalid argument."
NB_TOOL = [{"functionDeclarations": [{"name": "f", "behavior": "NON_BLOCKING"}]}]
MODELS_25 = [
    "gemini-2.5-flash-native-audio-preview-12-2025",
    "gemini-2.5-flash-native-audio-preview-09-2025",
    "gemini-2.5-flash-native-audio-latest",
]


async def outcome(emu: LiveEmulator, setup: dict[str, Any], version: str) -> tuple[int, str]:
    ws = await open_raw(emu, version=version)
    await send(ws, {"setup": setup})
    try:
        first = await recv(ws)
    except ConnectionClosed as err:
        if err.rcvd is None:
            raise AssertionError("no close frame") from err
        return err.rcvd.code, err.rcvd.reason
    assert_setup_complete(first)
    await ws.close()
    return 0, ""


REJECTED: list[tuple[str, str, dict[str, Any]]] = [
    (MODEL_38, "v1beta", {"generationConfig": {"responseModalities": ["TEXT"]}}),
    (MODEL_38, "v1alpha", {"generationConfig": {"enableAffectiveDialog": True}}),
    (MODEL_38, "v1beta", {"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}),
    (MODEL_38, "v1beta", {"generationConfig": {"thinkingConfig": {"thinkingLevel": "LOW"}}}),
    (MODEL_38, "v1beta", {"proactivity": {"proactiveAudio": False}}),
    (MODEL_31, "v1beta", {"generationConfig": {"responseModalities": ["TEXT"]}}),
    (MODEL_31, "v1beta", {"generationConfig": {"thinkingConfig": {"thinkingBudget": 128}}}),
    (MODEL_31, "v1beta", {"tools": NB_TOOL}),
    (MODEL_31, "v1alpha", {"generationConfig": {"enableAffectiveDialog": True}}),
    (MODEL_31, "v1alpha", {"proactivity": {"proactiveAudio": True}}),
    *[(m, "v1beta", {"generationConfig": {"enableAffectiveDialog": True}}) for m in MODELS_25],
    *[(m, "v1beta", {"proactivity": {"proactiveAudio": True}}) for m in MODELS_25],
    *[
        (m, "v1beta", {"generationConfig": {"thinkingConfig": {"thinkingLevel": "HIGH"}}})
        for m in MODELS_25
    ],
    *[(m, "v1beta", {"generationConfig": {"responseModalities": ["IMAGE"]}}) for m in MODELS_25],
    (MODEL_25, "v1beta", {"generationConfig": {"responseModalities": ["AUDIO", "TEXT"]}}),
    (
        MODEL_25,
        "v1beta",
        {
            "generationConfig": {
                "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Bob"}}}
            }
        },
    ),
    (
        MODEL_25,
        "v1beta",
        {
            "contextWindowCompression": {
                "triggerTokens": 100,
                "slidingWindow": {"targetTokens": 200},
            }
        },
    ),
]

ACCEPTED: list[tuple[str, str, dict[str, Any]]] = [
    (MODEL_38, "v1beta", {"tools": NB_TOOL, "proactivity": {"proactiveAudio": True}}),
    (MODEL_38, "v1", {"generationConfig": {"responseModalities": ["AUDIO"]}}),
    (MODEL_31, "v1beta", {"generationConfig": {"thinkingConfig": {"thinkingLevel": "MINIMAL"}}}),
    (
        MODEL_31,
        "v1beta",
        {"tools": [{"functionDeclarations": [{"name": "f", "behavior": "BLOCKING"}]}]},
    ),
    *[
        (m, "v1beta", {"generationConfig": {"responseModalities": ["TEXT"]}, "tools": NB_TOOL})
        for m in MODELS_25
    ],
    *[
        (
            m,
            "v1alpha",
            {
                "generationConfig": {
                    "enableAffectiveDialog": True,
                    "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True},
                },
                "proactivity": {"proactiveAudio": True},
            },
        )
        for m in MODELS_25
    ],
    (
        MODEL_25,
        "v1beta",
        {
            "generationConfig": {
                "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Sulafat"}}}
            }
        },
    ),
]


@pytest.mark.parametrize(("model", "version", "extra"), REJECTED)
async def test_rejected_options(
    emu: LiveEmulator, model: str, version: str, extra: dict[str, Any]
) -> None:
    setup = {"model": f"models/{model}", **extra}
    assert await outcome(emu, setup, version) == (1007, INVALID)
    assert emu.connections[0].rejection_detail


@pytest.mark.parametrize(("model", "version", "extra"), ACCEPTED)
async def test_accepted_options(
    emu: LiveEmulator, model: str, version: str, extra: dict[str, Any]
) -> None:
    setup = {"model": f"models/{model}", **extra}
    assert await outcome(emu, setup, version) == (0, "")


async def test_unknown_model_1008(emu: LiveEmulator) -> None:
    code, reason = await outcome(emu, {"model": "models/gemini-1.0-pro"}, "v1alpha")
    assert code == 1008
    assert reason == (
        "models/gemini-1.0-pro is not found for API version v1alpha, "
        "or is not supported for bidiGenerateContent"
    )


async def test_default_behavior_per_model(emu: LiveEmulator) -> None:
    from .conftest import recv_turn, recv_until

    tools = [
        {
            "functionDeclarations": [
                {
                    "name": "HassTurnOn",
                    "parameters": {"type": "OBJECT", "properties": {"name": {"type": "STRING"}}},
                }
            ]
        }
    ]
    for model, blocking in ((MODEL_38, False), (MODEL_31, True), (MODEL_25, True)):
        ws = await open_raw(emu)
        await send(ws, {"setup": {"model": f"models/{model}", "tools": tools}})
        await recv(ws)
        await send(
            ws,
            {
                "clientContent": {
                    "turns": [{"role": "user", "parts": [{"text": "turn on the fan"}]}],
                    "turnComplete": True,
                }
            },
        )
        msgs = await recv_until(ws, lambda m: "toolCall" in m)
        assert "executableCode" in msgs[0]["serverContent"]["modelTurn"]["parts"][0]
        call = msgs[-1]["toolCall"]["functionCalls"][0]
        if blocking:
            await send(
                ws,
                {
                    "toolResponse": {
                        "functionResponses": [
                            {"id": call["id"], "name": call["name"], "response": {}}
                        ]
                    }
                },
            )
        await recv_turn(ws)
        await ws.close()
    behaviors = [r.behavior for c in emu.connections for r in c.tool_responses]
    assert behaviors == ["BLOCKING", "BLOCKING"]
