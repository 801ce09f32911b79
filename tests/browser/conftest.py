"""Fixtures of the browser test: the served demo, Chromium, the screenshot directory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
import os
from pathlib import Path
import re
import shutil
import signal
import socket
import sys

from homeassistant.const import __version__ as HA_VERSION
import pytest

from .helpers import chromium_paths

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "demo-output" / "browser"
CURRENT_HA = next(
    line.strip()
    for line in (ROOT / "scripts" / "ha-versions").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)


@dataclass(frozen=True, slots=True)
class Demo:
    """A running ``python -m devtools.demo --serve``."""

    url: str
    username: str
    password: str
    stdout: Path
    stderr: Path


@pytest.fixture
def chromium() -> tuple[str, str]:
    """Debian's chromium and chromedriver (scripts/setup installs them); the current HA only."""
    if HA_VERSION != CURRENT_HA:
        pytest.skip(
            f"the browser test runs on the current Home Assistant ({CURRENT_HA}) only: the "
            f"frontend's markup changes between releases; {HA_VERSION} is covered by the others"
        )
    paths = chromium_paths()
    if paths is None:
        message = "chromium and chromedriver are not installed (scripts/setup installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return paths


@pytest.fixture
def artifacts() -> Path:
    """demo-output/browser/ (git-ignored), emptied: this run's screenshots."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _read(path: Path) -> str:
    return await asyncio.to_thread(path.read_text)


@pytest.fixture
async def demo(tmp_path: Path, socket_enabled: None) -> AsyncIterator[Demo]:
    """The demo with ``--serve`` on a free port (offline); stopped with SIGTERM afterwards."""
    port = _free_port()
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    env = {k: v for k, v in os.environ.items() if k != "GEMINI_API_KEY"}
    with stdout.open("w") as out, stderr.open("w") as err:
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
            env=env,
            stdout=out,
            stderr=err,
        )
    try:
        async with asyncio.timeout(180):
            while "Stop:" not in (text := await _read(stdout)):
                assert proc.returncode is None, text + (await _read(stderr))[-3000:]
                await asyncio.sleep(0.2)
        login = re.search(r"Log in:\s+(\S+) / (\S+)", text)
        assert login is not None, text
        yield Demo(f"http://127.0.0.1:{port}", login[1], login[2], stdout, stderr)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(60):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
    log = await _read(stderr)
    assert proc.returncode == 0, log[-3000:]
    # Nothing blocked HA's event loop and no error involves our integration. (HA may log errors
    # about its own environment: camera's "Error loading libturbojpeg" when the UI loads the
    # action descriptions on a machine without that library.)
    assert "Detected blocking call" not in log, log[-3000:]
    assert not our_errors(log), our_errors(log)


RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\S* (\w+) \([^)]*\) \[([^\]]+)\]")


def our_errors(log: str) -> list[str]:
    """HA log records (with their tracebacks) of level ERROR or worse that involve our code."""
    records: list[tuple[str, str, list[str]]] = []
    for line in log.splitlines():
        if match := RECORD_START.match(line):
            records.append((match[1], match[2], [line]))
        elif records:
            records[-1][2].append(line)
    return [
        "\n".join(lines)
        for level, logger, lines in records
        if level in ("ERROR", "CRITICAL")
        and (logger.startswith("custom_components.gemini_live") or "gemini_live" in "".join(lines))
    ]
