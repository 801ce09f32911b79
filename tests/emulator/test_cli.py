"""The command line entry point."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
import re
import signal
import sys

from websockets.asyncio.client import connect

from .conftest import MODEL_38, ws_path

ROOT = Path(__file__).resolve().parents[2]


async def test_cli_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    scenario = tmp_path / "s.json"
    scenario.write_text(
        json.dumps({"turns": [{"match": {"text": "ping"}, "steps": [{"say": "pong"}]}]})
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "live_emulator",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--api-key",
        "k1",
        "--scenario",
        str(scenario),
        "--pace",
        "0",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(15):
            line = (await proc.stdout.readline()).decode()
        match = re.fullmatch(r"Live emulator serving (ws://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        async with connect(match[1] + ws_path() + "?key=k1") as ws:
            await ws.send(
                json.dumps(
                    {
                        "setup": {
                            "model": f"models/{MODEL_38}",
                            "generationConfig": {"responseModalities": ["AUDIO"]},
                            "outputAudioTranscription": {},
                        }
                    }
                )
            )
            assert "sessionId" in json.loads(await ws.recv())["setupComplete"]
            await ws.send(json.dumps({"realtimeInput": {"text": "ping"}}))
            said = ""
            while True:
                msg = json.loads(await ws.recv())
                said += msg.get("serverContent", {}).get("outputTranscription", {}).get("text", "")
                if msg.get("serverContent", {}).get("turnComplete"):
                    break
            assert said == "pong"
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
