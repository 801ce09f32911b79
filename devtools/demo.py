"""The README's main job: a real Home Assistant, our integration and a talking Wyoming satellite.

Offline (default): starts the Live emulator, a real Home Assistant in a temporary config directory
(only the integrations the demo needs), adds our integration through its config flow (pointed at
the emulator), which creates the assistant "Gemini Live" (our STT, agent and TTS), connects a
simulated Wyoming satellite through HA's own wyoming integration, and has it say "turn on the
kitchen light" (a speech WAV). Prints the transcript, the tool calls and results, the reply, the
light's state change, where the reply audio was saved, and timings.

With ``GEMINI_API_KEY`` set, the same runs against Google's Live service (no emulator).
``--serve`` then keeps HA running (http://127.0.0.1:8123 by default) with a printed login, until
Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
import json
import os
from pathlib import Path
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from typing import Any
import wave

from homeassistant import bootstrap, runner
from homeassistant.components.assist_pipeline import Pipeline, async_get_pipelines
from homeassistant.components.conversation.chat_log import (
    DATA_CHAT_LOGS,
    AssistantContent,
    ToolResultContent,
)
from homeassistant.components.http import config as http_config, const as http_const
from homeassistant.components.onboarding import STORAGE_KEY as ONBOARDING_KEY, STORAGE_VERSION
from homeassistant.components.onboarding.const import STEPS as ONBOARDING_STEPS
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, __version__ as HA_VERSION
from homeassistant.core import CoreState, Event, HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util

from devtools.ha_voice import (
    add_wyoming_satellite,
    ffmpeg_binary,
    remove_wyoming_satellite,
    satellite_entity_id,
    use_pipeline,
)
from devtools.wyoming_satellite import AudioFormatInfo, FakeSatellite, RunResult, load_wav_pcm16k
from live_emulator import EmulatorConfig, LiveEmulator

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT / "tests" / "fixtures" / "speech" / "turn_on_kitchen_light.wav"
UTTERANCE = "turn on the kitchen light"
DOMAIN = "gemini_live"
DEMO_KEY = "demo-key"
LIGHT = "light.kitchen_light"
HOST = "127.0.0.1"
OFFLINE_INTRO = """\
Offline demo: Google's Live service is replaced by the Live emulator (live_emulator/).
  The emulator has no speech recognition: it is told the transcript of the speech.
  Its voice is synthetic (speech-like tones, no words). Everything else is real:
  Home Assistant, its wyoming integration and assist pipeline, our integration,
  the Live wire protocol over websockets, the tool call and the light."""
# What the demo needs. HA's own default integrations (bootstrap.DEFAULT_INTEGRATIONS) are not set
# up: several need requirements this environment does not install (radio_frequency, infrared...).
HEADLESS = ("ffmpeg", "conversation", "assist_pipeline", "template")
SERVE = ("frontend", "config")  # the UI (frontend brings auth, onboarding, lovelace, repairs...)


def _config_yaml(serve: bool) -> str:
    lines = [
        "homeassistant:",
        "  name: Gemini Live demo",
        "  latitude: 52.37",
        "  longitude: 4.89",
        "  elevation: 0",
        "  unit_system: metric",
        "  time_zone: UTC",
        "  country: NL",
        "  language: en",
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
        lines += [f"{domain}:" for domain in SERVE]
    return "\n".join(lines) + "\n"


def _storage_file(key: str, version: int, data: Any, minor_version: int = 1) -> str:
    """A file of HA's ``.storage`` (helpers.storage.Store's format)."""
    return json.dumps(
        {"version": version, "minor_version": minor_version, "key": key, "data": data}, indent=2
    )


def _http_store(port: int) -> str:
    """HA's stored HTTP settings, as the UI leaves them once confirmed: 127.0.0.1:``port``.

    Built with the installed HA's own schema and keys. A ``http:`` YAML block would instead be
    migrated into a *pending* configuration that HA reverts (with a restart) after 5 minutes
    unless it is confirmed in the UI.
    """
    stable = {
        **http_config.HTTP_STORAGE_SCHEMA(
            {http_const.CONF_SERVER_HOST: [HOST], http_const.CONF_SERVER_PORT: port}
        ),
        http_config.HTTP_CONFIG_CREATED_AT: dt_util.utcnow().isoformat(),
        http_config.HTTP_CONFIG_ERROR: None,
        http_config.HTTP_CONFIG_ERROR_MESSAGE: None,
    }
    return _storage_file(
        http_config.STORAGE_KEY,
        http_config.STORAGE_VERSION,
        {
            http_config.KEY_STABLE: stable,
            http_config.KEY_PENDING: None,
            http_config.KEY_YAML_MIGRATION_DONE: True,
        },
        http_config.STORAGE_MINOR_VERSION,
    )


def _onboarding_store() -> str:
    """Onboarding finished (every step done), so the UI opens on the login page.

    HA's onboarding API would do the same step by step, but its "core config" step also starts
    network integrations (weather, radio, translate) this offline demo does not want.
    """
    return _storage_file(ONBOARDING_KEY, STORAGE_VERSION, {"done": list(ONBOARDING_STEPS)})


def _write_config(config_dir: Path, port: int, serve: bool) -> None:
    (config_dir / "configuration.yaml").write_text(_config_yaml(serve))
    storage = config_dir / ".storage"
    storage.mkdir()
    (storage / http_config.STORAGE_KEY).write_text(_http_store(port))
    if serve:
        (storage / ONBOARDING_KEY).write_text(_onboarding_store())


def _write_wav(path: Path, fmt: AudioFormatInfo, pcm: bytes) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(fmt.channels)
        wav.setsampwidth(fmt.width)
        wav.setframerate(fmt.rate)
        wav.writeframes(pcm)


class Clock:
    """Progress lines stamped with the time since the demo started."""

    def __init__(self) -> None:
        """Start the clock."""
        self.started = time.perf_counter()

    def step(self, text: str) -> None:
        """Print one progress line."""
        print(f"[{time.perf_counter() - self.started:6.1f} s] {text}", flush=True)


@dataclass(slots=True)
class Turn:
    """What the conversation's chat log recorded."""

    tool_calls: list[str]
    tool_results: list[str]
    reply: str


def _turn(hass: HomeAssistant) -> Turn:
    """The tool calls, their results and the reply text recorded in the chat logs."""
    turn = Turn([], [], "")
    for chat_log in hass.data.get(DATA_CHAT_LOGS, {}).values():
        for content in chat_log.content:
            if isinstance(content, AssistantContent):
                turn.tool_calls += [
                    f"{t.tool_name}({t.tool_args})" for t in content.tool_calls or ()
                ]
                if content.content:
                    turn.reply = content.content
            elif isinstance(content, ToolResultContent):
                data = json.dumps(content.result.data, separators=(",", ":"))
                data = data if len(data) <= 100 else data[:97] + "..."
                outcome = "error" if content.result.error else "success"
                turn.tool_results.append(f"{content.tool_name}: {outcome} {data}")
    return turn


def _our_engines(hass: HomeAssistant) -> dict[str, str]:
    """The demo agent's conversation/stt/tts entity ids (from the entity registry)."""
    registry = er.async_get(hass)
    return {
        e.domain: e.entity_id
        for e in registry.entities.values()
        if e.platform == DOMAIN and e.domain in ("conversation", "stt", "tts")
    }


def _assistant(hass: HomeAssistant, engines: dict[str, str]) -> Pipeline | None:
    """The assistant our integration created for its first agent."""
    return next(
        (
            p
            for p in async_get_pipelines(hass)
            if p.conversation_engine == engines.get("conversation")
            and p.stt_engine == engines.get("stt")
            and p.tts_engine == engines.get("tts")
        ),
        None,
    )


async def _create_login(hass: HomeAssistant) -> tuple[str, str]:
    """An administrator with a random password (what `hass --script auth add` does)."""
    from homeassistant.auth.providers import homeassistant as auth_ha  # noqa: PLC0415

    provider = auth_ha.async_get_provider(hass)
    username, password = "demo", secrets.token_urlsafe(9)
    await provider.async_add_auth(username, password)
    user = await hass.auth.async_create_user("Demo", group_ids=["system-admin"])
    credentials = await provider.async_get_or_create_credentials({"username": username})
    await hass.auth.async_link_user(user, credentials)
    return username, password


def _print_result(
    hass: HomeAssistant,
    run: RunResult,
    *,
    speech_seconds: float,
    before: str,
    after: str,
    wav_path: Path,
    offline: bool,
) -> None:
    turn = _turn(hass)
    fmt = run.audio_format
    transcript_note = "  (scripted: the emulator has no speech recognition)" if offline else ""
    print()
    print(f"Satellite said:  {SPEECH.relative_to(ROOT)} ({speech_seconds:.2f} s of real speech)")
    print(f"Transcript:      {run.transcript}{transcript_note}")
    for call in turn.tool_calls:
        print(f"Tool call:       {call}")
    for result in turn.tool_results:
        print(f"Tool result:     {result}")
    print(f"Reply text:      {turn.reply or run.synthesize_text or '(none)'}")
    print(f"State change:    {LIGHT} {before} -> {after}")
    if fmt is not None:
        voice = "synthetic speech-like tones from the emulator" if offline else "Gemini's voice"
        print(f"Reply audio:     {wav_path} ({run.reply_seconds:.2f} s, {fmt.rate} Hz; {voice})")
    t0 = run.speech_end_sent_at or run.started_at
    if run.first_audio_at is not None:
        window = "the emulator's 500 ms" if offline else "the service's"
        print(
            "Timings:         end of speech -> transcript "
            f"{((run.transcript_at or t0) - t0) * 1000:.0f} ms, -> first reply audio "
            f"{(run.first_audio_at - t0) * 1000:.0f} ms (includes {window} end-of-speech "
            "silence window)"
        )
    print()


async def _serve(hass: HomeAssistant, port: int, endpoint: str, offline: bool) -> None:
    """Print how to use the running HA; return on Ctrl-C, SIGTERM or when HA stops itself."""
    username, password = await _create_login(hass)
    url = f"http://{HOST}:{port}"
    print(f"Home Assistant is running: {url}")
    print(f"  Log in:      {username} / {password}")
    print("  Try:         Assist (the speech bubble, top right of Overview): pick the assistant")
    print(f'               "Gemini Live" and type "{UTTERANCE}"')
    print("               Settings > Voice assistants: the assistant Gemini Live made")
    print("               Settings > Devices & services > Gemini Live > Add agent (with its own")
    print("               assistant)")
    if offline:
        print(f"  Emulator:    endpoint {endpoint}, API key {DEMO_KEY} (what the Gemini Live")
        print("               entry uses; to add it again in the UI, delete that entry first)")
    else:
        print("  Gemini Live: Google's Live service with your GEMINI_API_KEY (not printed)")
    print("  Stop:        Ctrl-C", flush=True)

    stop = asyncio.Event()
    stopped_by_ha = False

    def _ha_stopping(_event: Event) -> None:
        nonlocal stopped_by_ha
        stopped_by_ha = True
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    unsub = hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _ha_stopping)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    if stopped_by_ha:
        print("Home Assistant stopped (a restart or stop from the UI?): the demo ends.")
    else:
        unsub()
        print("Stopping Home Assistant...", flush=True)


async def run(args: argparse.Namespace) -> int:
    """Run the demo; returns the process exit code."""
    clock = Clock()
    api_key = os.environ.get("GEMINI_API_KEY", "")
    offline = not api_key
    print(
        OFFLINE_INTRO if offline else "GEMINI_API_KEY is set: the demo uses Google's Live service."
    )
    out_dir = Path(args.output)
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    config_dir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="gemini-live-demo-"))
    await asyncio.to_thread(_write_config, config_dir, args.port, args.serve)
    speech = await asyncio.to_thread(load_wav_pcm16k, str(SPEECH))

    emulator: LiveEmulator | None = None
    endpoint = ""
    if offline:
        api_key = DEMO_KEY
        emulator = LiveEmulator(
            EmulatorConfig(api_keys=frozenset({api_key}), pace=1.0), host=HOST, port=0
        )
        await emulator.start()
        endpoint = emulator.http_url
        clock.step(f"Live emulator listening on {emulator.ws_url}")

    # Only what the demo needs (see HEADLESS / SERVE); the headless demo has no frontend.
    bootstrap.DEFAULT_INTEGRATIONS = set()
    if not args.serve:
        bootstrap.CRITICAL_INTEGRATIONS = set()
    hass = await bootstrap.async_setup_hass(
        runner.RuntimeConfig(config_dir=str(config_dir), skip_pip=True)
    )
    if hass is None:
        print("Home Assistant failed to start", file=sys.stderr)
        return 1
    sat: FakeSatellite | None = None
    try:
        await hass.async_start()
        clock.step(f"Home Assistant {HA_VERSION} started (config: {config_dir})")

        flow = await hass.config_entries.flow.async_init(DOMAIN, context={"source": "user"})
        result = await hass.config_entries.flow.async_configure(
            flow["flow_id"], {"api_key": api_key, "endpoint": endpoint}
        )
        if result["type"] != "create_entry":
            print(f"The config flow did not create the entry: {result}", file=sys.stderr)
            return 1
        await hass.async_block_till_done()
        engines = _our_engines(hass)
        assistant = _assistant(hass, engines)
        if assistant is None:
            print(f"No assistant was created for {engines}", file=sys.stderr)
            return 1
        clock.step("Gemini Live added through its config flow (API key checked by a Live session)")
        clock.step(
            f'Assistant "{assistant.name}" created: {engines["stt"]} + '
            f"{engines['conversation']} + {engines['tts']}, language {assistant.language}"
        )

        sat = FakeSatellite("Demo satellite")
        await sat.start()
        sat_entry = await add_wyoming_satellite(hass, sat)
        await use_pipeline(hass, sat_entry, assistant.id)
        clock.step(
            f"Wyoming satellite connected as {satellite_entity_id(hass, sat_entry)}, "
            f'using the assistant "{assistant.name}"'
        )

        before = hass.states.get(LIGHT)
        if emulator is not None:
            emulator.queue_transcripts(UTTERANCE)  # the emulator has no speech recognition
        clock.step(f'The satellite says "{UTTERANCE}" (streamed in real time)')
        result_run = await sat.run_pipeline(speech, realtime=True)
        await hass.async_block_till_done()
        after = hass.states.get(LIGHT)
        if result_run.errors:
            print(f"The voice run failed: {result_run.errors}", file=sys.stderr)
            return 1
        clock.step("Voice run finished")
        wav_path = out_dir / "reply.wav"
        if result_run.audio_format is not None:
            await asyncio.to_thread(
                _write_wav, wav_path, result_run.audio_format, result_run.reply_pcm
            )
        _print_result(
            hass,
            result_run,
            speech_seconds=len(speech) / 32000,
            before=before.state if before else "?",
            after=after.state if after else "?",
            wav_path=wav_path,
            offline=offline,
        )

        if args.serve:
            await _serve(hass, args.port, endpoint, offline)
        if hass.state is CoreState.running:
            await remove_wyoming_satellite(hass, sat_entry)
    finally:
        if sat is not None:
            await sat.stop()
        if hass.state not in (CoreState.stopping, CoreState.final_write, CoreState.stopped):
            await hass.async_stop()
        if emulator is not None:
            await emulator.stop()
        await asyncio.to_thread(shutil.rmtree, config_dir, ignore_errors=True)
    return 0


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as HA's server does
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="keep HA running until Ctrl-C")
    parser.add_argument("--port", type=int, default=8123, help="HA's HTTP port (default 8123)")
    parser.add_argument("--output", default="demo-output", help="where reply.wav is written")
    args: Any = parser.parse_args(argv)
    args.output = os.path.abspath(args.output)
    if not _port_is_free(args.port):
        parser.error(f"port {args.port} on {HOST} is in use: choose another with --port")
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
