"""Each fault kind produces its observable outcome at the client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import json

import pytest
from websockets.exceptions import ConnectionClosed, PayloadTooBig

from live_emulator import Fault, LiveEmulator

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
