"""The README's main job: a real Home Assistant, our integration and a talking Wyoming satellite.

Offline (default): starts the Live emulator, a real Home Assistant in a temporary config directory,
sets our integration up through its config flow (pointed at the emulator), creates an assist
pipeline with our STT/agent/TTS, connects a simulated Wyoming satellite through HA's own wyoming
integration, and has it say "turn on the kitchen light" (a speech WAV). Prints the transcript, the
tool call, the light's state change, where Gemini's native-audio reply was saved, and timings.

With ``GEMINI_API_KEY`` set, the same runs against Google's Live service (no emulator).
``--serve`` keeps HA running on http://127.0.0.1:8123 with a printed login, to try the UI.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
from pathlib import Path
import secrets
import shutil
import signal
import sys
import tempfile
import time
from typing import Any
import wave

from homeassistant import bootstrap, runner
from homeassistant.components.conversation.chat_log import (
    DATA_CHAT_LOGS,
    AssistantContent,
    ToolResultContent,
)
from homeassistant.core import HomeAssistant

from devtools.ha_voice import ffmpeg_binary, remove_wyoming_satellite, wire_satellite
from devtools.wyoming_satellite import FakeSatellite, load_wav_pcm16k
from live_emulator import EmulatorConfig, LiveEmulator

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT / "tests" / "fixtures" / "speech" / "turn_on_kitchen_light.wav"
UTTERANCE = "turn on the kitchen light"
DOMAIN = "gemini_live"


def _config_yaml(port: int, serve: bool) -> str:
    lines = [
        "homeassistant:",
        "  name: Gemini Live demo",
        "  latitude: 52.37",
        "  longitude: 4.89",
        "  elevation: 0",
        "  unit_system: metric",
        "  time_zone: UTC",
        "  country: NL",
        "http:",
        "  server_host: 127.0.0.1",
        f"  server_port: {port}",
        "ffmpeg:",
        f"  ffmpeg_bin: {ffmpeg_binary()}",
        "conversation:",
        "assist_pipeline:",
        "template:",
        "  - light:",
        "      - name: Kitchen Light",
        "        turn_on: []",
        "        turn_off: []",
    ]
    if serve:
        lines += ["frontend:", "config:", "onboarding:", "person:", "auth:"]
    return "\n".join(lines) + "\n"


def _step(text: str, started: float) -> None:
    print(f"[{(time.perf_counter() - started) * 1000:7.0f} ms] {text}", flush=True)


def _tool_calls(hass: HomeAssistant) -> list[str]:
    """The tool calls and results recorded in the conversations' chat logs."""
    lines: list[str] = []
    for chat_log in hass.data.get(DATA_CHAT_LOGS, {}).values():
        for content in chat_log.content:
            if isinstance(content, AssistantContent):
                lines += [f"{t.tool_name}({t.tool_args})" for t in content.tool_calls or ()]
            elif isinstance(content, ToolResultContent):
                outcome = "error" if content.result.error else "success"
                lines.append(f"  -> {content.tool_name}: {outcome}")
    return lines


async def _create_login(hass: HomeAssistant) -> tuple[str, str]:
    """An owner user with a random password (printed for --serve)."""
    from homeassistant.auth.providers import homeassistant as auth_ha  # noqa: PLC0415

    provider = auth_ha.async_get_provider(hass)
    username, password = "demo", secrets.token_urlsafe(9)
    user = await hass.auth.async_create_user("Demo", group_ids=["system-admin"])
    await provider.async_add_auth(username, password)
    credentials = await provider.async_get_or_create_credentials({"username": username})
    await hass.auth.async_link_user(user, credentials)
    from homeassistant.components.onboarding import async_is_onboarded  # noqa: PLC0415

    if not async_is_onboarded(hass):
        store = hass.data["onboarding"]
        store.steps = ["user", "core_config", "analytics", "integration"]
        await store.async_save()
    return username, password


async def run(args: argparse.Namespace) -> int:
    """Run the demo; returns the process exit code."""
    started = time.perf_counter()
    api_key = os.environ.get("GEMINI_API_KEY", "")
    offline = not api_key
    out_dir = Path(args.output)
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    config_dir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="gemini-live-demo-"))
    # HA finds custom integrations in the importable ``custom_components`` package: this
    # repository's (its root is on sys.path), so the integration runs from the working tree.
    port = args.port or 8123
    await asyncio.to_thread(
        (config_dir / "configuration.yaml").write_text, _config_yaml(port, args.serve)
    )

    emulator: LiveEmulator | None = None
    endpoint = ""
    if offline:
        api_key = "demo-key"
        emulator = LiveEmulator(
            EmulatorConfig(api_keys=frozenset({api_key}), pace=1.0), host="127.0.0.1", port=0
        )
        await emulator.start()
        endpoint = emulator.http_url
        _step(f"Live emulator serving {emulator.ws_url} (offline: no GEMINI_API_KEY)", started)
    else:
        _step("GEMINI_API_KEY set: using Google's Live service", started)

    if importlib.util.find_spec("hass_frontend") is None:
        # Headless run without HA's 110 MB frontend package (only --serve installs it): HA
        # would otherwise start in recovery mode, which disables custom integrations.
        bootstrap.CRITICAL_INTEGRATIONS = {
            d for d in bootstrap.CRITICAL_INTEGRATIONS if d != "frontend"
        }
    hass = await bootstrap.async_setup_hass(
        runner.RuntimeConfig(config_dir=str(config_dir), skip_pip=True)
    )
    if hass is None:
        print("Home Assistant failed to start", file=sys.stderr)
        return 1
    await hass.async_start()
    _step(f"Home Assistant {hass.config.as_dict()['version']} started in {config_dir}", started)

    sat: FakeSatellite | None = None
    try:
        flow = await hass.config_entries.flow.async_init(DOMAIN, context={"source": "user"})
        result = await hass.config_entries.flow.async_configure(
            flow["flow_id"], {"api_key": api_key, "endpoint": endpoint}
        )
        if result["type"] != "create_entry":
            print(f"Config flow did not create the entry: {result}", file=sys.stderr)
            return 1
        await hass.async_block_till_done()
        _step("Gemini Live set up through its config flow (API key validated live)", started)

        sat = FakeSatellite("Demo satellite")
        await sat.start()
        wiring = await wire_satellite(
            hass,
            sat,
            stt_engine="stt.gemini_live",
            tts_engine="tts.gemini_live_voice",
            conversation_engine="conversation.gemini_live",
            pipeline_name="Gemini Live",
        )
        _step(f"Wyoming satellite connected as {wiring.satellite_entity_id}", started)

        before = hass.states.get("light.kitchen_light")
        if emulator is not None:
            emulator.queue_transcripts(UTTERANCE)  # the emulator has no speech recognition
        result_run = await sat.run_pipeline(load_wav_pcm16k(str(SPEECH)), realtime=True)
        await hass.async_block_till_done()
        after = hass.states.get("light.kitchen_light")

        if result_run.errors:
            print(f"The voice run failed: {result_run.errors}", file=sys.stderr)
            return 1
        wav_path = out_dir / "reply.wav"
        fmt = result_run.audio_format
        assert fmt is not None
        with wave.open(str(wav_path), "wb") as wav:
            wav.setnchannels(fmt.channels)
            wav.setsampwidth(fmt.width)
            wav.setframerate(fmt.rate)
            wav.writeframes(result_run.reply_pcm)
        t0 = result_run.speech_end_sent_at or result_run.started_at
        print()
        print(
            f"Satellite said:   {SPEECH.name} ({len(load_wav_pcm16k(str(SPEECH))) / 32000:.2f} s)"
        )
        print(f"Transcript:       {result_run.transcript}")
        for call in _tool_calls(hass):
            print(f"Tool call:        {call}")
        print(
            "State change:     light.kitchen_light "
            f"{before.state if before else '?'} -> {after.state if after else '?'}"
        )
        print(f"Reply audio:      {wav_path} ({result_run.reply_seconds:.2f} s, {fmt.rate} Hz)")
        if result_run.first_audio_at is not None:
            print(
                "Timings:          end of speech -> transcript "
                f"{((result_run.transcript_at or t0) - t0) * 1000:.0f} ms, "
                f"-> first reply audio {(result_run.first_audio_at - t0) * 1000:.0f} ms "
                f"(includes the {500 if offline else 'service'} ms end-of-speech silence window)"
            )
        print()

        if args.serve:
            username, password = await _create_login(hass)
            print(f"Home Assistant is running: http://127.0.0.1:{port}")
            print(f"Log in with {username} / {password}. Ctrl-C stops it.")
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        await remove_wyoming_satellite(hass, wiring.entry)
    finally:
        if sat is not None:
            await sat.stop()
        await hass.async_stop()
        if emulator is not None:
            await emulator.stop()
        shutil.rmtree(config_dir, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="keep HA running on :8123")
    parser.add_argument("--port", type=int, default=0, help="HA's HTTP port (default 8123)")
    parser.add_argument("--output", default="demo-output", help="where reply.wav is written")
    args: Any = parser.parse_args(argv)
    args.output = os.path.abspath(args.output)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
