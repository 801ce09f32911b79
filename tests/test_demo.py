"""The README's main job (scripts/demo) runs offline and does what it says."""

from __future__ import annotations

import os
from pathlib import Path
import socket
import subprocess
import sys
import wave

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_offline(tmp_path: Path, socket_enabled: None) -> None:
    """Transcript, tool call, light on, and a saved native-audio reply."""
    env = {k: v for k, v in os.environ.items() if k != "GEMINI_API_KEY"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "devtools.demo",
            "--port",
            str(_free_port()),
            "--output",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "offline: no GEMINI_API_KEY" in out
    assert "set up through its config flow" in out
    assert "Transcript:       turn on the kitchen light" in out
    assert "Tool call:        intent__HassTurnOn({'name': 'kitchen light'})" in out
    assert "Tool call:          -> intent__HassTurnOn: success" in out
    assert "State change:     light.kitchen_light unknown -> on" in out
    with wave.open(str(tmp_path / "reply.wav")) as wav:
        assert wav.getframerate() == 22050
        assert wav.getnframes() > 22050 * 0.5
    assert "first reply audio" in out
