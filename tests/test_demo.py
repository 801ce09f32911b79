"""The README's main job (scripts/demo) runs offline, says what it does, and serves the UI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import json
import os
from pathlib import Path
import re
import signal
import socket
import sys
import wave

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parent.parent
# What a clean run never prints on stderr (HA logs to stderr).
NOT_ON_STDERR = ("ERROR", "Traceback", "Detected blocking call", "Exception")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    """The offline demo: no Google API key."""
    return {k: v for k, v in os.environ.items() if k != "GEMINI_API_KEY"}


def _assert_clean(stderr: str) -> None:
    bad = [line for line in stderr.splitlines() if any(word in line for word in NOT_ON_STDERR)]
    assert not bad, stderr[-5000:]


async def test_demo_offline(tmp_path: Path, socket_enabled: None) -> None:
    """It says what is emulated and shows the whole turn: transcript, tool, reply, light, audio."""
    # An asyncio subprocess: HA's blocking-call detector watches this (the loop's) thread.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devtools.demo",
        "--port",
        str(_free_port()),
        "--output",
        str(tmp_path),
        cwd=ROOT,
        env=_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(180):
        stdout, stderr = await proc.communicate()
    out, err = stdout.decode(), stderr.decode()
    assert proc.returncode == 0, out + err[-3000:]
    assert "the Live emulator" in out
    assert "it is told the transcript" in out
    assert "Its voice is synthetic" in out
    assert "added through its config flow" in out
    assert re.search(
        r'Assistant "Gemini Live" created: stt\.gemini_live \+ conversation\.gemini_live \+ '
        r"tts\.gemini_live_voice, language en",
        out,
    ), out
    assert 'using the assistant "Gemini Live"' in out
    assert "transcript:      turn on the kitchen light  (scripted" in out.lower()
    assert "Tool call:       intent__HassTurnOn({'name': 'kitchen light'})" in out
    assert "Tool result:     intent__HassTurnOn: success {" in out
    reply = re.search(r"^Reply text:      (.+)$", out, re.MULTILINE)
    assert reply is not None
    assert reply.group(1) not in ("", "(none)")
    assert "State change:    light.kitchen_light unknown -> on" in out
    assert f"Reply audio:     {tmp_path / 'reply.wav'} (" in out
    rate, frames = await asyncio.to_thread(_wav_info, tmp_path / "reply.wav")
    assert rate == 22050
    assert frames > 22050 * 0.5
    assert re.search(r"-> first reply audio \d+ ms", out)
    _assert_clean(err)


def _wav_info(path: Path) -> tuple[int, int]:
    with wave.open(str(path)) as wav:
        return wav.getframerate(), wav.getnframes()


@pytest.fixture
async def served(
    tmp_path: Path, socket_enabled: None
) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """``python -m devtools.demo --serve`` on a free port; killed if still running at the end."""
    port = _free_port()
    with (tmp_path / "stdout").open("w") as stdout, (tmp_path / "stderr").open("w") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "devtools.demo",
            "--serve",
            "--port",
            str(port),
            "--output",
            str(tmp_path),
            cwd=ROOT,
            env=_env(),
            stdout=stdout,
            stderr=stderr,
        )
    yield proc, port
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


async def _wait_for_output(
    path: Path, text: str, proc: asyncio.subprocess.Process, within: float
) -> str:
    """Wait (bounded) until the demo printed ``text``; fail early if it exited."""
    async with asyncio.timeout(within):
        while text not in (out := await _read(path)):
            assert proc.returncode is None, out + (await _read(path.parent / "stderr"))[-3000:]
            await asyncio.sleep(0.2)
    return out


async def _read(path: Path) -> str:
    return await asyncio.to_thread(path.read_text)


async def test_demo_serves_the_ui(
    tmp_path: Path, served: tuple[asyncio.subprocess.Process, int]
) -> None:
    """--serve: the UI on the port (no HTTP config awaiting confirmation), the printed login
    works, SIGTERM stops it cleanly."""
    proc, port = served
    out = await _wait_for_output(tmp_path / "stdout", "Stop:", proc, within=180)
    url = f"http://127.0.0.1:{port}"
    assert f"Home Assistant is running: {url}" in out
    login = re.search(r"Log in:\s+(\S+) / (\S+)", out)
    assert login is not None
    assert re.search(r"Emulator:\s+endpoint http://127\.0\.0\.1:\d+, API key demo-key", out)

    # The port is stored as confirmed: nothing pending, so HA never reverts and restarts.
    config_dir = re.search(r"\(config: (\S+)\)", out)
    assert config_dir is not None
    http_store = json.loads(await _read(Path(config_dir[1]) / ".storage" / "http"))
    assert http_store["data"]["pending"] is None
    assert http_store["data"]["stable"]["server_port"] == port

    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            assert response.status == 200
            assert "<title>Home Assistant</title>" in await response.text()
        # Log in as the UI does (the login flow of HA's auth provider).
        client_id = f"{url}/"
        async with session.post(
            f"{url}/auth/login_flow",
            json={
                "client_id": client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": client_id,
            },
        ) as response:
            flow = await response.json()
        async with session.post(
            f"{url}/auth/login_flow/{flow['flow_id']}",
            json={"client_id": client_id, "username": login[1], "password": login[2]},
        ) as response:
            result = await response.json()
    assert result["type"] == "create_entry", result

    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(60):
        assert await proc.wait() == 0
    out = await _read(tmp_path / "stdout")
    assert out.rstrip().endswith("Stopping Home Assistant...")
    _assert_clean(await _read(tmp_path / "stderr"))
    assert not await asyncio.to_thread(Path(config_dir[1]).exists)  # the temp config is removed
