"""Each fault kind produces its observable outcome at the client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import json
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, PayloadTooBig

from live_emulator import Fault, LiveEmulator
from live_emulator.faults import frame_kinds
from live_emulator.records import FaultRecord

from .conftest import (
    MODEL_25,
    MODEL_38,
    open_raw,
    recv,
    recv_turn,
    send,
    setup_session,
    until_closed,
)

SETUP = {"model": f"models/{MODEL_38}", "outputAudioTranscription": {}}


def hello() -> dict[str, object]:
    return {
        "clientContent": {
            "turns": [{"role": "user", "parts": [{"text": "Hello"}]}],
            "turnComplete": True,
        }
    }


async def test_drop_without_close_frame(emu: LiveEmulator) -> None:
    emu.inject(Fault(kind="drop", on_turn=1))
    ws = await setup_session(emu, SETUP)
    await send(ws, hello())
    with pytest.raises(ConnectionClosed) as err:
        await recv(ws)
    assert err.value.rcvd is None  # no close frame: abnormal closure
    rec = emu.connections[0]
    await rec.wait_closed()
    assert (rec.close_code, rec.closed_by) == (1006, "drop")


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (1011, "Internal error encountered."),
        (1011, "You exceeded your current quota, please check your plan and billing details."),
        (1008, "Project denied access."),
        (1007, "Request contains an invalid argument."),
    ],
)
async def test_close_with_code(emu: LiveEmulator, code: int, reason: str) -> None:
    ws = await setup_session(emu, SETUP)
    emu.inject(Fault(kind="close", code=code, reason=reason))
    with pytest.raises(ConnectionClosed) as err:
        await recv(ws)
    assert err.value.rcvd is not None
    assert (err.value.rcvd.code, err.value.rcvd.reason) == (code, reason)


async def test_close_before_setup_complete(emu: LiveEmulator) -> None:
    emu.inject(
        Fault(kind="close", after_server_messages=0, code=1011, reason="Service unavailable.")
    )
    ws = await open_raw(emu)
    await send(ws, {"setup": SETUP})
    with pytest.raises(ConnectionClosed) as err:
        await recv(ws)
    assert err.value.rcvd is not None
    assert err.value.rcvd.code == 1011


async def test_close_mid_reply_at_audio_chunk(emu: LiveEmulator) -> None:
    emu.inject(Fault(kind="close", at_audio_chunk=3))
    ws = await setup_session(emu, SETUP)
    await send(ws, hello())
    msgs, _ = await until_closed(ws)
    assert sum("modelTurn" in m.get("serverContent", {}) for m in msgs) == 2


async def test_delay_slows_every_frame(emu: LiveEmulator) -> None:
    emu.inject(Fault(kind="delay", seconds=0.03, after_server_messages=1))
    text_setup = {
        "model": f"models/{MODEL_25}",
        "generationConfig": {"responseModalities": ["TEXT"]},
    }
    ws = await setup_session(emu, text_setup)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await send(ws, hello())
    msgs = await recv_turn(ws)
    assert len(msgs) >= 3
    assert loop.time() - start >= 0.03 * len(msgs) * 0.9
    await ws.close()


async def test_malformed_frame(emu: LiveEmulator) -> None:
    emu.inject(Fault(kind="malformed", on_turn=1))
    ws = await setup_session(emu, SETUP)
    await send(ws, hello())
    raw = await ws.recv()
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    # The session carries on after the bad frame.
    await recv_turn(ws)
    assert emu.connections[0].faults_fired == ["malformed"]
    await ws.close()


async def test_huge_frame(emu: LiveEmulator) -> None:
    emu.inject(Fault(kind="huge", after_server_messages=1))
    small = await setup_session(emu, SETUP, max_size=2**20)
    with pytest.raises((ConnectionClosed, PayloadTooBig)):
        await recv(small)
    emu.inject(Fault(kind="huge", size=3_000_000))
    big = await setup_session(emu, SETUP, max_size=None)
    raw = await big.recv()
    assert isinstance(raw, bytes)
    assert len(raw) >= 2_900_000
    assert "modelTurn" in json.loads(raw)["serverContent"]
    await big.close()


async def test_go_away_fault(emu: LiveEmulator) -> None:
    ws = await setup_session(emu, SETUP)
    emu.inject(Fault(kind="go_away", time_left_s=0.1))
    assert await recv(ws) == {"goAway": {"timeLeft": "0.100s"}}
    with pytest.raises(ConnectionClosed) as err:
        await recv(ws)
    assert err.value.rcvd is not None
    assert err.value.rcvd.code == 1011


async def test_fault_fires_once_unless_persistent(
    make_emulator: Callable[..., LiveEmulator],
) -> None:
    async with make_emulator() as emu:
        emu.inject(Fault(kind="close", after_server_messages=0, code=1011, persistent=True))
        for _ in range(2):
            ws = await open_raw(emu)
            await send(ws, {"setup": SETUP})
            with pytest.raises(ConnectionClosed):
                await recv(ws)
        emu.clear_faults()
        ok = await setup_session(emu, SETUP)
        await ok.close()

        emu.inject(Fault(kind="close", on_turn=1))
        ws = await setup_session(emu, SETUP)
        await send(ws, hello())
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        again = await setup_session(emu, SETUP)
        await send(again, hello())
        await recv_turn(again)
        await again.close()


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="at most one trigger"):
        Fault(kind="drop", on_turn=1, after_server_messages=2)
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault(kind="explode")  # type: ignore[arg-type]


# ---------------------------------------------------------------- issue-9 fault scenarios

TOOLS = [
    {
        "functionDeclarations": [
            {
                "name": "HassTurnOn",
                "parameters": {"type": "OBJECT", "properties": {"name": {"type": "STRING"}}},
            }
        ]
    }
]


def text_turn(text: str) -> dict[str, object]:
    return {
        "clientContent": {
            "turns": [{"role": "user", "parts": [{"text": text}]}],
            "turnComplete": True,
        }
    }


def kinds_of(msgs: list[dict[str, Any]]) -> list[str]:
    """One readable kind per message (the most specific)."""
    out = []
    for m in msgs:
        kinds = frame_kinds(m)
        for k in ("executableCode", "audio", "text", "outputTranscription", "toolCall"):
            if k in kinds:
                out.append(k)
                break
        else:
            out.append(sorted(kinds - {"serverContent", "usageMetadata"})[0])
    return out


@pytest.mark.parametrize(
    "fault",
    [
        Fault(kind="drop", after="toolCall"),
        Fault(kind="close", after="toolCall", code=1011),
        Fault(kind="close", after="toolCall", code=1011, reason="Deadline expired."),
    ],
)
async def test_connection_lost_right_after_tool_call(emu: LiveEmulator, fault: Fault) -> None:
    """The client has the (BLOCKING) call; the connection dies before it can answer."""
    emu.inject(fault)
    ws = await setup_session(emu, {"model": f"models/{MODEL_25}", "tools": TOOLS})
    await send(ws, text_turn("turn on the kitchen light"))
    msgs, err = await until_closed(ws)
    assert kinds_of(msgs) == ["executableCode", "toolCall"]
    call_id = msgs[-1]["toolCall"]["functionCalls"][0]["id"]
    if fault.kind == "drop":
        assert err.rcvd is None  # abnormal closure, no close frame
    else:
        assert err.rcvd is not None
        assert (err.rcvd.code, err.rcvd.reason) == (1011, fault.reason)
    rec = emu.connections[0]
    await rec.wait_closed()
    assert rec.fault_log == [FaultRecord(fault.kind, "after=toolCall#1", 3, (call_id,))]
    assert rec.unanswered_calls == [call_id]
    assert rec.tool_calls == [
        {
            "id": call_id,
            "name": "HassTurnOn",
            "args": {"name": "kitchen light"},
            "behavior": "BLOCKING",
        }
    ]
    assert rec.closed_by == ("drop" if fault.kind == "drop" else "server")


async def test_second_tool_call_trigger(emu: LiveEmulator) -> None:
    """ "After the Nth toolCall" counts calls across turns of the connection."""
    emu.inject(Fault(kind="drop", after="toolCall", nth=2))
    ws = await setup_session(emu, {"model": f"models/{MODEL_38}", "tools": TOOLS})
    await send(ws, text_turn("turn on the kitchen light"))
    first = await recv_turn(ws)
    assert sum("toolCall" in m for m in first) == 1
    await send(ws, text_turn("turn on the porch light"))
    msgs, err = await until_closed(ws)
    assert err.rcvd is None
    assert kinds_of(msgs)[-1] == "toolCall"
    assert msgs[-1]["toolCall"]["functionCalls"][0]["args"] == {"name": "porch light"}
    # Both NON_BLOCKING calls are still unanswered when the connection dies.
    rec = emu.connections[0]
    await rec.wait_closed()
    assert len(rec.fault_log[0].pending_calls) == 2


@pytest.mark.parametrize(
    ("setup", "trigger", "expect"),
    [
        # AUDIO: drop before the 3rd audio chunk: 2 chunks (and their transcription) arrived.
        (SETUP, {"before": "audio", "nth": 3}, {"audio": 2}),
        # AUDIO: drop before the 2nd transcription piece: its audio arrived, it did not.
        (SETUP, {"before": "outputTranscription", "nth": 2}, {"outputTranscription": 1}),
        # TEXT modality: drop before the 2nd text chunk of the reply.
        (
            {"model": f"models/{MODEL_25}", "generationConfig": {"responseModalities": ["TEXT"]}},
            {"before": "text", "nth": 2},
            {"text": 1},
        ),
    ],
)
async def test_drop_mid_reply(
    emu: LiveEmulator, setup: dict[str, Any], trigger: dict[str, Any], expect: dict[str, int]
) -> None:
    emu.inject(Fault(kind="drop", **trigger))
    ws = await setup_session(emu, setup)
    await send(ws, text_turn("Please repeat a fairly long sentence back to me"))
    msgs, err = await until_closed(ws)
    assert err.rcvd is None
    kinds = kinds_of(msgs)
    for kind, count in expect.items():
        assert kinds.count(kind) == count
    assert "generationComplete" not in kinds
    assert "turnComplete" not in kinds
    if "outputTranscription" in expect:
        # The transcription follows the audio it covers: the audio of piece 2 was sent.
        assert kinds[-1] == "audio"
    rec = emu.connections[0]
    await rec.wait_closed()
    assert rec.fault_log[0].trigger == f"before={trigger['before']}#{trigger['nth']}"


async def test_close_while_non_blocking_call_runs_then_resume(emu: LiveEmulator) -> None:
    """Close after the NB call's turn ended (handle issued), before its result: the resumed
    session still knows the call and applies the result sent on the new connection."""
    setup = {
        "model": f"models/{MODEL_38}",
        "tools": TOOLS,
        "sessionResumption": {},
        "outputAudioTranscription": {},
    }
    # Update 1 is the non-resumable one right after the toolCall, 2 the turn boundary's.
    emu.inject(Fault(kind="close", code=1011, after="sessionResumptionUpdate", nth=2))
    ws = await setup_session(emu, setup)
    await send(ws, text_turn("turn on the kitchen light"))
    msgs, err = await until_closed(ws)
    assert err.rcvd is not None
    assert err.rcvd.code == 1011
    updates = [m["sessionResumptionUpdate"] for m in msgs if "sessionResumptionUpdate" in m]
    assert updates[0] == {}  # not resumable while the model executes the call
    assert updates[1]["resumable"] is True
    call = next(m for m in msgs if "toolCall" in m)["toolCall"]["functionCalls"][0]
    turn_end = next(i for i, m in enumerate(msgs) if "turnComplete" in m.get("serverContent", {}))
    assert turn_end < len(msgs) - 1  # closed after the turn, with the call still running
    rec = emu.connections[0]
    await rec.wait_closed()
    assert rec.fault_log[0].pending_calls == (call["id"],)

    ws2 = await setup_session(
        emu, {**setup, "sessionResumption": {"handle": updates[1]["newHandle"]}}
    )
    await send(
        ws2,
        {
            "toolResponse": {
                "functionResponses": [
                    {"id": call["id"], "name": call["name"], "response": {"success": True}}
                ]
            }
        },
    )
    reply = await recv_turn(ws2)
    said = "".join(
        m["serverContent"]["outputTranscription"]["text"]
        for m in reply
        if "outputTranscription" in m.get("serverContent", {})
    )
    assert said == "Done, the kitchen light is now on."
    assert emu.connections[1].tool_responses[0].status == "applied"
    await ws2.close()
    await emu.connections[1].wait_closed()
    assert emu.connections[1].unanswered_calls == []


async def test_close_after_non_blocking_turn_before_handle(emu: LiveEmulator) -> None:
    """Close right after turnComplete (before the handle): the call is still running."""
    emu.inject(Fault(kind="close", code=1011, after="turnComplete"))
    ws = await setup_session(emu, {"model": f"models/{MODEL_38}", "tools": TOOLS})
    await send(ws, text_turn("turn on the kitchen light"))
    msgs, err = await until_closed(ws)
    assert err.rcvd is not None
    assert "turnComplete" in msgs[-1]["serverContent"]
    call_id = next(m for m in msgs if "toolCall" in m)["toolCall"]["functionCalls"][0]["id"]
    rec = emu.connections[0]
    await rec.wait_closed()
    assert rec.unanswered_calls == [call_id]


async def test_blocking_call_lost_with_its_connection_is_unknown_after_resume(
    emu: LiveEmulator,
) -> None:
    """A handle is only issued at turn boundaries: a BLOCKING call made after the last handle
    is not part of the resumed session, so its result is "unknown" there."""
    setup = {"model": f"models/{MODEL_25}", "tools": TOOLS, "sessionResumption": {}}
    ws = await setup_session(emu, setup)
    await send(ws, text_turn("Hello"))
    await recv_turn(ws)
    handle = (await recv(ws))["sessionResumptionUpdate"]["newHandle"]
    emu.inject(Fault(kind="drop", after="toolCall"))
    await send(ws, text_turn("turn on the kitchen light"))
    msgs, _ = await until_closed(ws)
    call = msgs[-1]["toolCall"]["functionCalls"][0]
    ws2 = await setup_session(emu, {**setup, "sessionResumption": {"handle": handle}})
    await send(
        ws2,
        {
            "toolResponse": {
                "functionResponses": [{"id": call["id"], "name": call["name"], "response": {}}]
            }
        },
    )
    # Nothing answers an unknown result; the session goes on.
    await send(ws2, text_turn("what did I just ask"))
    reply = await recv_turn(ws2)
    assert reply[-1]["serverContent"]["turnComplete"]
    statuses = [(r.id, r.status) for r in emu.connections[1].tool_responses]
    assert statuses == [(call["id"], "unknown")]
    await ws2.close()


async def test_huge_frame_mid_reply(emu: LiveEmulator) -> None:
    emu.inject(Fault(kind="huge", before="audio", nth=2, size=2_000_000))
    small = await setup_session(emu, SETUP, max_size=2**20)
    await send(small, hello())
    got: list[dict[str, Any]] = []
    with pytest.raises((ConnectionClosed, PayloadTooBig)):
        await receive_into(small, got)
    assert kinds_of(got).count("audio") == 1  # the reply had started
    rec = emu.connections[0]
    await rec.wait_closed()
    assert rec.faults_fired == ["huge"]
    assert rec.close_code == 1009  # the client refused the frame: message too big
    assert rec.closed_by == "client"

    emu.inject(Fault(kind="huge", before="audio", nth=2, size=2_000_000))
    big = await setup_session(emu, SETUP, max_size=None)
    await send(big, hello())
    frames: list[Any] = []
    while True:
        raw = await big.recv()
        assert isinstance(raw, bytes)
        frames.append(raw)
        if b'"turnComplete"' in raw:
            break
    sizes = [len(f) for f in frames]
    huge_at = next(i for i, n in enumerate(sizes) if n >= 1_900_000)
    parsed = [json.loads(f) for f in frames]
    assert kinds_of(parsed[:huge_at]).count("audio") == 1
    assert "audio" in kinds_of(parsed[huge_at + 1 :])  # the reply goes on after it
    await big.close()


async def receive_into(ws: Any, out: list[dict[str, Any]]) -> None:
    """Receive into ``out`` until the connection fails."""
    while True:
        out.append(await recv(ws))


def test_frame_kinds() -> None:
    audio = {"serverContent": {"modelTurn": {"parts": [{"inlineData": {"data": ""}}]}}}
    assert frame_kinds(audio) == {"serverContent", "modelTurn", "audio"}
    end = {"serverContent": {"turnComplete": True}, "usageMetadata": {}}
    assert frame_kinds(end) == {"serverContent", "turnComplete", "usageMetadata"}
    thought = {"serverContent": {"modelTurn": {"parts": [{"text": "x", "thought": True}]}}}
    assert "thought" in frame_kinds(thought)
    assert "text" not in frame_kinds(thought)
    assert frame_kinds({"toolCall": {}}) == {"toolCall"}


def test_fault_trigger_validation() -> None:
    with pytest.raises(ValueError, match="unknown frame kind"):
        Fault(kind="drop", after="toolcall")
    with pytest.raises(ValueError, match="nth counts from 1"):
        Fault(kind="drop", before="audio", nth=0)
    with pytest.raises(ValueError, match="at most one trigger"):
        Fault(kind="drop", before="audio", after="toolCall")
    assert Fault(kind="drop", at_audio_chunk=3).trigger == "before=audio#3"
    assert Fault(kind="close", after="turnComplete", nth=2).trigger == "after=turnComplete#2"
