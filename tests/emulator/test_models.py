"""Per-model setup validation: each option a model does not accept closes 1007."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from live_emulator import LiveEmulator
from live_emulator.errors import clip_reason
from live_emulator.models import MODEL_TABLE, RETIRED

from .conftest import (
    MODEL_25,
    MODEL_31,
    MODEL_38,
    MODEL_38X,
    MODEL_RECORDED,
    assert_setup_complete,
    open_raw,
    recv,
    send,
)

INVALID = "Request contains an invalid argument."
NB_TOOL = [{"functionDeclarations": [{"name": "f", "behavior": "NON_BLOCKING"}]}]
B_TOOL = [{"functionDeclarations": [{"name": "f", "behavior": "BLOCKING"}]}]


def level(value: str) -> dict[str, Any]:
    return {"generationConfig": {"thinkingConfig": {"thinkingLevel": value}}}


def transcription(**config: Any) -> dict[str, Any]:
    return {"inputAudioTranscription": config}


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
    (MODEL_31, "v1beta", level("XHIGH")),
    # gemini-3.8-live-extended-thinking: async calls only, thinkingLevel LOW/MEDIUM/HIGH.
    (MODEL_38X, "v1beta", {"tools": B_TOOL}),
    (MODEL_38X, "v1beta", level("MINIMAL")),
    (MODEL_38X, "v1beta", level("XHIGH")),
    (MODEL_38X, "v1beta", {"generationConfig": {"thinkingConfig": {"thinkingBudget": 512}}}),
    (MODEL_38X, "v1beta", {"generationConfig": {"responseModalities": ["TEXT"]}}),
    (MODEL_38X, "v1alpha", {"generationConfig": {"enableAffectiveDialog": True}}),
    (MODEL_38X, "v1beta", {"proactivity": {"proactiveAudio": False}}),
    # Transcription and proactivity options.
    (MODEL_38, "v1beta", transcription(mode="SMART", wordTimestamp=True)),
    (MODEL_38, "v1beta", transcription(mode="SMART", diarization=True)),
    (MODEL_38, "v1beta", transcription(customVocabulary=["  "])),
    (MODEL_31, "v1beta", {"proactivity": {"proactiveVideo": True}}),
    (MODEL_25, "v1alpha", {"proactivity": {"proactiveVideo": True}}),
    (MODEL_25, "v1alpha", {"proactivity": {"proactiveAudio": False, "proactiveVideo": True}}),
    (MODEL_RECORDED, "v1alpha", {"proactivity": {"proactiveAudio": True}}),
    (MODEL_RECORDED, "v1beta", {"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}),
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
    *[(MODEL_38X, "v1beta", {"tools": NB_TOOL, **level(v)}) for v in ("LOW", "MEDIUM", "HIGH")],
    (MODEL_38X, "v1beta", {"tools": [{"functionDeclarations": [{"name": "f"}]}]}),
    (
        MODEL_38X,
        "v1beta",
        {
            "generationConfig": {
                "thinkingConfig": {"thinkingLevel": "HIGH", "includeThoughts": True}
            },
            "proactivity": {"proactiveAudio": True, "proactiveVideo": True},
        },
    ),
    (MODEL_38, "v1beta", {"proactivity": {"proactiveVideo": True}}),
    (MODEL_25, "v1alpha", {"proactivity": {"proactiveAudio": True, "proactiveVideo": True}}),
    *[
        (
            m,
            "v1beta",
            transcription(
                customVocabulary=["IKEA Strala", "Living room"],
                mode="SMART",
                languageCodes=["en-US"],
            ),
        )
        for m in (MODEL_38, MODEL_38X, MODEL_31, MODEL_25, MODEL_RECORDED)
    ],
    (MODEL_38, "v1beta", {"outputAudioTranscription": {"mode": "VERBATIM", "wordTimestamp": True}}),
    (
        MODEL_RECORDED,
        "v1beta",
        {"generationConfig": {"responseModalities": ["TEXT"]}, "tools": NB_TOOL},
    ),
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


async def test_every_current_model_is_served_and_retired_ones_are_not_found(
    emu: LiveEmulator,
) -> None:
    for spec in MODEL_TABLE:
        code, _ = await outcome(emu, {"model": f"models/{spec.name}"}, "v1beta")
        assert (spec.name, code) == (spec.name, 0)
    for name in RETIRED:
        assert await outcome(emu, {"model": f"models/{name}"}, "v1beta") == (
            1008,
            clip_reason(
                f"models/{name} is not found for API version v1beta, "
                "or is not supported for bidiGenerateContent"
            ),
        )


@pytest.mark.parametrize("preview", [s.name for s in MODEL_TABLE if s.status != "stable"])
async def test_retiring_a_preview_is_one_setting(
    make_emulator: Callable[..., LiveEmulator], preview: str
) -> None:
    """EmulatorConfig.retired_models (or one line in models.RETIRED) retires a model."""
    async with make_emulator(retired_models=frozenset({preview})) as emu:
        # The real text, clipped to the 123 bytes a close frame carries.
        assert await outcome(emu, {"model": f"models/{preview}"}, "v1alpha") == (
            1008,
            clip_reason(
                f"models/{preview} is not found for API version v1alpha, "
                "or is not supported for bidiGenerateContent"
            ),
        )
        assert await outcome(emu, {"model": f"models/{MODEL_38}"}, "v1alpha") == (0, "")


async def test_session_id_per_model(emu: LiveEmulator) -> None:
    ws = await open_raw(emu)
    await send(ws, {"setup": {"model": f"models/{MODEL_38}"}})
    first = await recv(ws)
    session_id = first["setupComplete"]["sessionId"]
    assert session_id == emu.connections[0].session_id
    assert len(session_id) == 36  # deterministic per seed and connection
    await ws.close()
    ws = await open_raw(emu)
    await send(ws, {"setup": {"model": f"models/{MODEL_RECORDED}"}})
    assert await recv(ws) == {"setupComplete": {}}  # as recorded for this model
    assert emu.connections[1].session_id is None
    await ws.close()
